package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pachca-export/pachca-export/internal/suggest"
)

// commands is the command table: a new subcommand is one more entry here
// (and a file with its constructor). The order is the order of the usage.
func commands() []*command {
	return []*command{runCommand(), followCommand(), checkCommand(), verifyCommand(), schemaCommand(), reportCommand(), demoCommand(), versionCommand(), helpCommand()}
}

// command is one subcommand: what the usage and its help say about it, its
// flags, and what it does.
type command struct {
	name string
	// synopsis follows the name in the usage line, flags written as the
	// README writes them: "-c FILE [--from T] [--to T]".
	synopsis string
	// summary is one line for the list of commands; about is the paragraph
	// of the command's own help (both without a final newline).
	summary, about string
	// args says the command takes positional arguments; others refuse them.
	args bool
	// setup declares the flags on fs and returns the action, which runs once
	// they are parsed, with the positional arguments.
	setup func(fs *flags, e *env) func(ctx context.Context, args []string) error
	// interrupted says what a signal that ends the action leaves behind,
	// after "NAME: interrupted; " ("" for nothing to say).
	interrupted string
}

// flags is a flag.FlagSet that remembers the order of its flags, for the
// help. Errors and usage go nowhere: the command line reports them.
type flags struct {
	*flag.FlagSet
	order []string
}

func newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs}
}

// String declares a string flag; a `NAME` in backquotes in usage names its value in the help.
func (f *flags) String(name, value, usage string) *string {
	p := new(string)
	f.StringVar(p, name, value, usage)
	return p
}

// StringVar declares a string flag stored in p. Given twice, it is an
// error: `-c a.yaml ... -c b.yaml` would otherwise run b.yaml unsaid. So is
// an empty value, usually an unset shell variable: `--token "$T"` would
// otherwise run with the configuration's token, `--from "$F" --to "$T"`
// the configured period, unsaid.
func (f *flags) StringVar(p *string, name, value, usage string) {
	f.order = append(f.order, name)
	*p = value
	f.FlagSet.Var(&onceString{p: p}, name, usage)
}

// onceString is a string flag that takes one value.
type onceString struct {
	p   *string
	set bool
}

func (o *onceString) String() string {
	if o.p == nil { // the flag package's zero value, for the help's default
		return ""
	}
	return *o.p
}

func (o *onceString) Set(v string) error {
	if o.set {
		return fmt.Errorf("given twice (%q before)", *o.p)
	}
	if v == "" {
		return errors.New("empty (an unset shell variable?): give a value, or leave the flag out")
	}
	*o.p, o.set = v, true
	return nil
}

// Var declares a flag of value v's type (a list a flag may repeat, say).
func (f *flags) Var(v flag.Value, name, usage string) {
	f.order = append(f.order, name)
	f.FlagSet.Var(v, name, usage)
}

// Bool declares a boolean flag.
func (f *flags) Bool(name string, value bool, usage string) *bool {
	f.order = append(f.order, name)
	return f.FlagSet.Bool(name, value, usage)
}

// Int declares an integer flag.
func (f *flags) Int(name string, value int, usage string) *int {
	f.order = append(f.order, name)
	return f.FlagSet.Int(name, value, usage)
}

// flagName writes a flag as the README does: -c, --from.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// lookupCommand finds a command by name.
func lookupCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// meantCommand is the command a word for its task names, which no
// spelling is close to: "pachca-export export", the program's own name
// for what run does, was taken for a misspelt report.
var meantCommand = map[string]string{
	"export": "run", "backfill": "run",
	"tail": "follow", "stream": "follow",
	"validate": "check",
}

// unknownCommand is the error of a first argument that names no command;
// rest are the arguments after it. A flag there is named without its
// value (--token=...), and with a command later in rest, the order to
// write them in.
func unknownCommand(name string, rest []string) error {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if strings.HasPrefix(name, "-") {
		flag, _, _ := strings.Cut(name, "=")
		for _, a := range rest {
			if lookupCommand(a) != nil {
				return usageErr("%s before the command: the command comes first, then its flags (pachca-export %s %s ...); see pachca-export help", flag, a, flag)
			}
		}
		return usageErr("unknown command %q (commands: %s); see pachca-export help", flag, strings.Join(names, ", "))
	}
	hint := "commands: " + strings.Join(names, ", ")
	if s := cmp.Or(meantCommand[name], suggest.Closest(strings.ToLower(name), names)); s != "" {
		hint = "did you mean " + s + "?"
	}
	return usageErr("unknown command %q (%s); see pachca-export help", name, hint)
}

// execute parses the command's flags and runs it. --help (-h, -help) prints
// the command's help on stdout and succeeds.
func (c *command) execute(ctx context.Context, e *env, args []string) error {
	fs := newFlags(c.name)
	action := c.setup(fs, e)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help(e.stdout, fs)
			return nil
		}
		return c.flagError(fs, err)
	}
	if !c.args && fs.NArg() > 0 {
		arg := fs.Arg(0)
		if cf := fs.Lookup("c"); cf != nil && cf.Value.String() == "" && (strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml")) {
			return usageErr("%s: unexpected argument %q (did you mean -c %s?); see pachca-export %s --help", c.name, arg, arg, c.name)
		}
		return usageErr("%s: unexpected argument %q; see pachca-export %s --help", c.name, arg, c.name)
	}
	err := action(ctx, fs.Args())
	if errors.Is(err, context.Canceled) {
		msg := c.name + ": interrupted"
		if c.interrupted != "" {
			msg += "; " + c.interrupted
		}
		return errors.New(msg)
	}
	return err
}

// flagError turns the flag package's error into one line that names the
// flag as the README writes it and, for an unknown one, the closest known.
func (c *command) flagError(fs *flags, err error) error {
	see := "see pachca-export " + c.name + " --help"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		hint := ""
		if m := meantFlag[name]; m != "" && fs.Lookup(m) != nil {
			hint = fmt.Sprintf(" (did you mean %s?)", flagName(m))
		} else if others := c.othersWithFlag(name); len(others) > 0 {
			hint = fmt.Sprintf(" (%s is a flag of %s, not of %s)", flagName(name), strings.Join(others, ", "), c.name)
		} else if s := suggest.Closest(name, fs.order); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", flagName(s))
		}
		return usageErr("%s: unknown flag %s%s; %s", c.name, flagName(name), hint, see)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return usageErr("%s: flag %s needs a value; %s", c.name, flagName(strings.TrimLeft(name, "-")), see)
	}
	// "invalid value "x" for flag -events: parse error" and the like.
	fs.VisitAll(func(f *flag.Flag) {
		msg = strings.Replace(msg, "flag -"+f.Name+":", "flag "+flagName(f.Name)+":", 1)
	})
	return usageErr("%s: %s; %s", c.name, msg, see)
}

// meantFlag is the flag other tools' names for it mean, which no spelling
// is close to: --config, the usual name of -c, got no hint at all.
var meantFlag = map[string]string{"config": "c", "conf": "c", "config-file": "c"}

// othersWithFlag names the other commands that have the flag name: a flag
// given to the wrong command is said so (follow --to got "did you mean
// --token?", the closest name, for a range, which only run, verify and
// report take).
func (c *command) othersWithFlag(name string) []string {
	var with []string
	for _, o := range commands() {
		if o.name == c.name {
			continue
		}
		fs := newFlags(o.name)
		o.setup(fs, &env{}) // declares the flags; the action is not run
		if fs.Lookup(name) != nil {
			with = append(with, o.name)
		}
	}
	return with
}

// help writes the command's help: what it does, its usage line and flags.
func (c *command) help(w io.Writer, fs *flags) {
	fmt.Fprintf(w, "pachca-export %s: %s\n\nusage: pachca-export %s", c.name, c.summary, c.name)
	if c.synopsis != "" {
		fmt.Fprintf(w, " %s", c.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.about)
	if len(fs.order) == 0 {
		return
	}
	fmt.Fprintf(w, "\nflags:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range fs.order {
		f := fs.Lookup(name)
		value, usage := flag.UnquoteUsage(f)
		left := flagName(name)
		if value != "" {
			left += " " + value
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", left, usage)
	}
	tw.Flush()
}

// usage writes the top-level usage: the commands and what they do.
func usage(w io.Writer) {
	fmt.Fprint(w, "pachca-export: export the Pachca audit-event log to NDJSON and Parquet files, S3 and Kafka\n\n")
	fmt.Fprint(w, "usage: pachca-export COMMAND [flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
pachca-export help COMMAND, or pachca-export COMMAND --help, shows what a
command does and its flags. T is RFC 3339 (2026-11-01T00:00:00Z) or a date
(2026-11-01 = 00:00 UTC); --from is inclusive, --to exclusive.
Exit status: 0 ok, 1 the run failed, 2 usage or configuration error.
`)
}

func helpCommand() *command {
	return &command{
		name:     "help",
		synopsis: "[COMMAND]",
		summary:  "show what a command does and its flags",
		about:    "With a command, prints its help (as COMMAND --help does); without, the list of commands.",
		args:     true,
		setup: func(_ *flags, e *env) func(context.Context, []string) error {
			return func(_ context.Context, args []string) error {
				switch len(args) {
				case 0:
					usage(e.stdout)
					return nil
				case 1:
					c := lookupCommand(args[0])
					if c == nil {
						return unknownCommand(args[0], nil)
					}
					fs := newFlags(c.name)
					c.setup(fs, e)
					c.help(e.stdout, fs)
					return nil
				}
				return usageErr("help: one command at a time, e.g. pachca-export help run")
			}
		},
	}
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version",
		about:   "Prints the version of this build.",
		setup: func(_ *flags, e *env) func(context.Context, []string) error {
			return func(context.Context, []string) error {
				fmt.Fprintln(e.stdout, "pachca-export", version())
				return nil
			}
		},
	}
}

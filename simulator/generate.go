package simulator

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Identifier ranges of the simulated workspace. Top-level ids are these
// numbers as strings; inside details they are JSON numbers.
const (
	ownerID   = 10001   // the workspace owner: the token's user
	firstUser = 10001   // users are firstUser .. firstUser+users-1
	firstBot  = 900001  // bots
	bots      = 20      // firstBot .. firstBot+bots-1
	firstChat = 300001  // chats
	firstTag  = 5001    // group tags
	firstMsg  = 1900001 // messages
	bigID     = 1<<53 + 1
)

// vocab holds the fixed values that details and headers are drawn from.
type vocab struct {
	roles, userAttrs, tagNames, chatNames, scopes, kmsReasons,
	dlpRules, dlpActions, userAgents, clientIDs, redirectURIs []string
}

func newVocab() vocab {
	return vocab{
		roles:      []string{"admin", "user", "multi_guest", "guest"},
		userAttrs:  []string{"first_name", "last_name", "nickname", "email", "phone_number", "department", "title", "custom_properties", "status", "avatar"},
		tagNames:   []string{"Design", "Backend", "Frontend", "Sales", "Support", "Маркетинг", "Бухгалтерия", "SRE on-call", "Interns 2026"},
		chatNames:  []string{"general", "Announcements", `Проект "Альфа"`, "ops-alerts", "Продажи Q4", "random", "incident-2026-11-03", "Design review", `HR \ People`, "Отдел 🚀 роста", "tab\there"},
		scopes:     []string{"messages:read", "messages:create", "chats:read", "chats:create", "users:read", "users:update", "group_tags:read", "audit_events:read", "search:users", "search:messages", "files:write", "webhooks:read"},
		kmsReasons: []string{"message_encryption", "message_decryption", "search_indexing", "export", "key_rotation"},
		dlpRules:   []string{"Card numbers (PCI DSS)", "Паспортные данные", "API keys and secrets", "Confidential: finance"},
		dlpActions: []string{"The message was blocked: it contains card data.", "Сообщение скрыто политикой DLP", "Notify security team"},
		userAgents: []string{
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"Pachca/3.60.0 (co.staply.pachca; build:15; iOS 18.5.0) Alamofire/5.0.0",
			"Pachca/3.58.2 (com.pachca.android; Android 14; SM-S918B) okhttp/4.12.0",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
			"Faraday v2.12.2", "python-requests/2.32.3", "curl/8.5.0",
			// Cut to 255 characters, as the API cuts user agents.
			("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 " +
				"Electron/33.2.1 Pachca/3.59.0 (desktop; linux; x64) ExtraToolbar/1.0 (compatible; ExampleCorp SSO Agent 7.4.2; " +
				"build 2026-10-30; channel stable; locale ru-RU) trailing-data-that-is-cut-here")[:255],
		},
		clientIDs:    []string{"xJ3kq9VbN2mL7pR4tY8wZ1aC5dE6fG0hI", "pachca-jira-connector", "3f9c2a1b7e8d4c6a9b0e1f2d3c4b5a69", "grafana-oncall"},
		redirectURIs: []string{"https://example.com/oauth/callback", "https://jira.example.org/plugins/pachca/callback", "http://localhost:8080/callback"},
	}
}

// draft is one event before rendering.
type draft struct {
	key                   string
	actorID, entityID     uint64
	actorType, entityType string
	serverSide            bool // written by the server itself: no IP, no user agent
	details               []byte
}

// gen draws a workspace's events from one seeded source, so a seed and a
// config always give the same bytes.
type gen struct {
	rng   *rand.Rand
	cfg   Config
	users int
	v     vocab
	buf   []byte
	cum   []int // cumulative key weights, in EventKeys order
}

func newGen(cfg Config) *gen {
	v := newVocab()
	if cfg.HostileText {
		v.tagNames = append(v.tagNames, HostileTexts()...)
		v.chatNames = append(v.chatNames, HostileTexts()...)
		v.userAgents = append(v.userAgents, HostileTexts()...)
	}
	return &gen{
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		cfg:   cfg,
		users: cfg.users(),
		v:     v,
	}
}

// generate fills st with cfg.Events events, oldest first.
func generate(cfg Config, st *store) {
	if cfg.Events == 0 {
		return
	}
	g := newGen(cfg)
	times := g.times()
	keys := g.keys(len(times))
	var a arena
	var scratch []byte
	odd := 0 // odd ids given so far
	for i, ord := range times {
		us := ord
		if cfg.Disorder > 0 {
			// Created a little before its place in the log: written by
			// another process, or a transaction that committed later.
			us = max(cfg.From.UnixMicro(), ord-g.rng.Int64N(int64(cfg.Disorder/time.Microsecond)+1))
			if !cfg.Micros {
				us -= us % 1000
			}
		}
		d := g.draft(keys[i])
		if cfg.BigEvents > 0 && cfg.BigDetails > 0 && i%max(1, len(times)/cfg.BigEvents) == 0 && i/max(1, len(times)/cfg.BigEvents) < cfg.BigEvents {
			d.details = g.padDetails(d.details, cfg.BigDetails)
		}
		ip, ua := g.client(d.serverSide)
		id := g.uuid()
		if cfg.OddKeys && odd < len(OddIDs()) && i%max(1, len(times)/len(OddIDs())) == len(times)/len(OddIDs())/2 {
			id, odd = OddIDs()[odd], odd+1
		}
		scratch = renderEvent(scratch[:0], id, us/1000, d, ip, ua)
		st.add(ord, us, a.put(scratch), d)
	}
}

// times returns cfg.Events sorted timestamps in [From, To), in Unix
// microseconds: whole milliseconds, or with Micros anywhere within them.
func (g *gen) times() []int64 {
	from, to := g.cfg.From.UnixMilli(), g.cfg.To.UnixMilli()
	n := g.cfg.Events
	out := make([]int64, 0, n)
	edges := 0 // the events at the edges of days, first in out
	if g.cfg.Midnight {
		// 00:00:00.000 twice and 23:59:59.999 once per day: the edges of day windows.
		day := time.UnixMilli(from).UTC().Truncate(24 * time.Hour)
		for ; day.UnixMilli() < to && len(out) < n/4; day = day.AddDate(0, 0, 1) {
			for _, ms := range []int64{day.UnixMilli(), day.UnixMilli(), day.UnixMilli() - 1} {
				if ms >= from && ms < to && len(out) < n/4 {
					out = append(out, ms)
				}
			}
		}
		edges = len(out)
	}
	if g.cfg.TieGroup > 0 {
		ms := from + g.rng.Int64N(to-from)
		for range min(g.cfg.TieGroup, n-len(out)) {
			out = append(out, ms)
		}
	}
	if g.cfg.TieGroups {
		// A few groups larger than a page (50), many small ones: about 10% of the events.
		sizes := []int{120, 51, 50, 49}
		for budget := min(n/10, n-len(out)); budget > 0; {
			size := 2 + g.rng.IntN(9)
			if len(sizes) > 0 {
				size, sizes = sizes[0], sizes[1:]
			}
			size = min(size, budget)
			ms := from + g.rng.Int64N(to-from)
			for range size {
				out = append(out, ms)
			}
			budget -= size
		}
	}
	for len(out) < n {
		out = append(out, from+g.rng.Int64N(to-from))
	}
	for i, ms := range out {
		us := ms * 1000
		switch {
		case !g.cfg.Micros:
		case i < edges && ms%(24*3600*1000) == 0 && (i == 0 || out[i-1]/1000 != ms):
			// the first of a midnight's two exactly at 00:00:00.000000: in
			// both days' answers (end_time is inclusive), exported in the
			// later day only
		case i < edges:
			// 00:00:00.000 and 23:59:59.999 with microseconds: after
			// that millisecond's end_time, in the answer of the day that
			// shows it only
			us += 1 + g.rng.Int64N(999)
		default:
			us += g.rng.Int64N(1000)
		}
		out[i] = us
	}
	slices.Sort(out)
	return out
}

// keys returns n event keys: every known key at least once when n allows,
// the rest weighted like a real workspace, shuffled.
func (g *gen) keys(n int) []string {
	known := EventKeys()
	keys := make([]string, 0, n)
	keys = append(keys, known[:min(n, len(known))]...)
	var extra []string
	if g.cfg.OddKeys {
		extra = append(extra, OddEventKeys()...)
	}
	extra = append(extra, ExtraEventKeys(g.cfg.ExtraKeys)...)
	if g.cfg.UnknownKeys {
		extra = append(extra, UnknownEventKeys()...)
	}
	for _, k := range extra {
		if len(keys) < n {
			keys = append(keys, k)
		}
	}
	for len(keys) < n {
		keys = append(keys, g.key())
	}
	g.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

// key draws one event key, weighted like a real workspace.
func (g *gen) key() string {
	if g.cum == nil {
		total := 0
		for _, k := range EventKeys() {
			total += keyWeight(k)
			g.cum = append(g.cum, total)
		}
	}
	if g.cfg.ExtraKeys > 0 && g.rng.IntN(2) == 0 {
		return fmt.Sprintf("unlisted_event_%04d", 1+g.rng.IntN(g.cfg.ExtraKeys))
	}
	if g.cfg.UnknownKeys && g.rng.IntN(200) == 0 {
		return UnknownEventKeys()[g.rng.IntN(len(UnknownEventKeys()))]
	}
	i, _ := slices.BinarySearch(g.cum, g.rng.IntN(g.cum[len(g.cum)-1])+1)
	return EventKeys()[i]
}

// renderEvent appends the API's JSON object for one event; "" for ip or ua
// means null.
func renderEvent(b []byte, id string, ms int64, d draft, ip, ua string) []byte {
	o := newObj(b)
	o.str("id", id)
	o.key("created_at")
	o.b = appendTime(o.b, ms)
	o.str("event_key", d.key)
	o.str("entity_id", strconv.FormatUint(d.entityID, 10))
	o.str("entity_type", d.entityType)
	o.str("actor_id", strconv.FormatUint(d.actorID, 10))
	o.str("actor_type", d.actorType)
	o.raw("details", d.details)
	o.nullStr("ip_address", ip, ip != "")
	o.nullStr("user_agent", ua, ua != "")
	return o.close()
}

// appendTime appends ms as the API writes created_at: "2006-01-02T15:04:05.000Z".
func appendTime(b []byte, ms int64) []byte {
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

// uuid returns a random (version 4) UUID drawn from the seeded source.
func (g *gen) uuid() string { return formatUUID(g.rng.Uint64(), g.rng.Uint64()) }

// formatUUID makes a version 4 UUID of 128 random bits.
func formatUUID(hi, lo uint64) string {
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], hi)
	binary.BigEndian.PutUint64(raw[8:], lo)
	var out [36]byte
	hex.Encode(out[0:8], raw[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], raw[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], raw[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], raw[8:10])
	out[23] = '-'
	hex.Encode(out[24:], raw[10:])
	return string(out[:])
}

// client returns the IP address and user agent of an event; "" means null.
func (g *gen) client(serverSide bool) (ip, ua string) {
	r := g.rng.IntN(100)
	if serverSide || r < 3 {
		return "", ""
	}
	switch g.rng.IntN(10) {
	case 0:
		ip = fmt.Sprintf("2a02:6b8:c0e:%x::%x", g.rng.IntN(0x1000), 1+g.rng.IntN(0xffff))
	case 1, 2, 3:
		ip = fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	default:
		ip = fmt.Sprintf("%d.%d.%d.%d", 31+g.rng.IntN(190), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	}
	if r < 4 {
		return ip, "" // a request without a User-Agent header
	}
	return ip, g.v.userAgents[g.rng.IntN(len(g.v.userAgents))]
}

// arena keeps rendered events in large shared chunks: one allocation per
// few thousand events instead of one each.
type arena struct{ chunk []byte }

// put copies b into the arena and returns the copy, capped so that nobody
// can append into its neighbour.
func (a *arena) put(b []byte) []byte {
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, max(4<<20, len(b)))
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// padDetails adds to the details object d an unlisted string field that
// brings it to about size bytes, of random words, which compress about as
// well as text does.
func (g *gen) padDetails(d []byte, size int) []byte {
	const field = `"attachment_preview":"`
	pad := max(0, size-len(d)-len(field)-2)
	out := make([]byte, 0, len(d)+len(field)+pad+2)
	out = append(out, '{')
	out = append(out, field...)
	for range pad {
		out = append(out, "abcdefghijklmnopqrstuvwxyz0123456789 "[g.rng.IntN(37)])
	}
	out = append(out, '"')
	if inner := d[1 : len(d)-1]; len(inner) > 0 {
		out = append(out, ',')
		out = append(out, inner...)
	}
	return append(out, '}')
}

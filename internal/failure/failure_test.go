package failure

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

type apiErr struct{}

func (apiErr) Error() string     { return "401" }
func (apiErr) FailureKind() Kind { return Permanent }
func TestKindOf(t *testing.T) {
	plain := errors.New("disk full")
	for name, c := range map[string]struct {
		err  error
		want Kind
	}{
		"plain is transient":        {plain, Transient},
		"wrapped usage":             {fmt.Errorf("run: %w", Usagef("--from: bad")), Usage},
		"permanent mark":            {AsPermanent(plain), Permanent},
		"foreign kind in the chain": {fmt.Errorf("fetch: %w", apiErr{}), Permanent},
		"joined: the worst wins":    {errors.Join(plain, fmt.Errorf("x: %w", apiErr{})), Permanent},
		"joined with usage":         {errors.Join(AsPermanent(plain), AsUsage(plain)), Usage},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, c.want, KindOf(c.err))
		})
	}
	require.Nil(t, AsUsage(nil))
	require.True(t, IsUsage(Usagef("x")))
	require.True(t, IsPermanent(Usagef("x")))
	require.False(t, IsPermanent(plain))
	require.False(t, IsUsage(nil))
	require.Equal(t, "disk full", AsPermanent(plain).Error())
	require.ErrorIs(t, AsPermanent(plain), plain)
}

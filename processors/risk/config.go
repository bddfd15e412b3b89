package risk

import (
	"errors"
	"log/slog"
	"time"

	"github.com/paystream/paystream/processors"
)

// Config tunes the stage; zero fields take the defaults stated on each.
type Config struct {
	// RefreshInterval is how often the rules are reloaded from PostgreSQL, so a change is
	// in force within it without a restart. Default 5s.
	RefreshInterval time.Duration
	// MaxStale is how long the stage keeps deciding on the rules it last loaded while
	// reloading fails; after it, records wait (a transient error). Default 1m.
	MaxStale time.Duration
	// MaxStateValueBytes bounds one state entry; it must not exceed the runner's
	// processors.Config.MaxStateValueBytes. Default processors.DefaultMaxStateValueBytes;
	// at least 128.
	MaxStateValueBytes int
	// Now stamps decisions (windows use the payment's CreatedAt, never this). Default
	// time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultRefreshInterval = 5 * time.Second
	DefaultMaxStale        = time.Minute
)

func (c Config) withDefaults() Config {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxStale == 0 {
		c.MaxStale = DefaultMaxStale
	}
	if c.MaxStateValueBytes == 0 {
		c.MaxStateValueBytes = processors.DefaultMaxStateValueBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.RefreshInterval < 0 {
		errs = append(errs, errors.New("field RefreshInterval: must not be negative"))
	}
	if c.MaxStale < c.RefreshInterval {
		errs = append(errs, errors.New("field MaxStale: must be at least RefreshInterval"))
	}
	if c.MaxStateValueBytes < 128 {
		errs = append(errs, errors.New("field MaxStateValueBytes: must be at least 128"))
	}
	return errors.Join(errs...)
}

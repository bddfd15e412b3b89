// Package logging builds the process's slog logger from the configuration. Log keys are
// stable (wallet, payment, topic, partition, offset) so operators can query them; no
// secret, card number or personal data is ever a log value.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing text or JSON at level to w.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

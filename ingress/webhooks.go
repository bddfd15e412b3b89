package ingress

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ingress/webhooks"
)

// EventTypes a webhook can subscribe to: the outcomes of payments.
var EventTypes = []string{"payment.succeeded", "payment.rejected", "payment.failed", "payment.pending_external"}

// Webhook is a channel's subscription to outcome events.
type Webhook struct {
	ID         string    `json:"id"`
	URL        string    `json:"url"`
	EventTypes []string  `json:"event_types"`
	CreatedAt  time.Time `json:"created_at"`
}

type webhookRequest struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
}

func (req webhookRequest) validate() *problem.Problem {
	var errs []problem.FieldError
	u, err := url.Parse(req.URL)
	switch {
	case req.URL == "":
		errs = append(errs, problem.FieldError{Field: "url", Code: "required", Message: "url is required"})
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
		errs = append(errs, problem.FieldError{Field: "url", Code: "invalid_url", Message: "want an absolute http(s) URL without credentials"})
	case len(req.URL) > 2048:
		errs = append(errs, problem.FieldError{Field: "url", Code: "too_long", Message: "url is limited to 2048 characters"})
	}
	if len(req.EventTypes) == 0 {
		errs = append(errs, problem.FieldError{Field: "event_types", Code: "required", Message: "subscribe to at least one of " + strings.Join(EventTypes, ", ")})
	}
	for _, et := range req.EventTypes {
		if !slices.Contains(EventTypes, et) {
			errs = append(errs, problem.FieldError{Field: "event_types", Code: "unknown_event_type", Message: et + " is not one of " + strings.Join(EventTypes, ", ")})
		}
	}
	if len(errs) > 0 {
		return problem.New(http.StatusUnprocessableEntity, "invalid_webhook", "the webhook is not valid").With(errs...)
	}
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req webhookRequest
	if !readStrict(w, r, &req) {
		return
	}
	if p := req.validate(); p != nil {
		problem.Write(w, p)
		return
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	wh := Webhook{ID: "wh_" + hex.EncodeToString(id), URL: req.URL, EventTypes: slices.Compact(slices.Sorted(slices.Values(req.EventTypes)))}
	err := s.pool.QueryRow(r.Context(),
		`INSERT INTO webhooks (id, channel_key, url, event_types) VALUES ($1, $2, $3, $4) RETURNING created_at`,
		wh.ID, channelFrom(r.Context()).KeyID, wh.URL, wh.EventTypes).Scan(&wh.CreatedAt)
	if err != nil {
		s.unavailable(w, "creating webhook", err)
		return
	}
	writeJSON(w, http.StatusCreated, wh)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	rows, err := s.pool.Query(r.Context(),
		`SELECT id, url, event_types, created_at FROM webhooks
		 WHERE channel_key = $1 AND deleted_at IS NULL ORDER BY created_at, id`, channelFrom(r.Context()).KeyID)
	if err != nil {
		s.unavailable(w, "listing webhooks", err)
		return
	}
	hooks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Webhook])
	if err != nil {
		s.unavailable(w, "listing webhooks", err)
		return
	}
	if hooks == nil {
		hooks = []Webhook{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hooks})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	tag, err := s.pool.Exec(r.Context(),
		`UPDATE webhooks SET deleted_at = now() WHERE id = $1 AND channel_key = $2 AND deleted_at IS NULL`,
		chi.URLParam(r, "id"), channelFrom(r.Context()).KeyID)
	if err != nil {
		s.unavailable(w, "deleting webhook", err)
		return
	}
	if tag.RowsAffected() == 0 {
		// Another channel's webhook is as invisible as one that never existed.
		problem.Write(w, problem.New(http.StatusNotFound, "webhook_not_found", "no webhook "+chi.URLParam(r, "id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Write(w, problem.New(http.StatusUnprocessableEntity, "invalid_limit", "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	list, owned, err := s.webhooks.Deliveries(r.Context(), channelFrom(r.Context()).KeyID, chi.URLParam(r, "id"), limit)
	if err != nil {
		s.unavailable(w, "listing deliveries", err)
		return
	}
	if !owned {
		problem.Write(w, problem.New(http.StatusNotFound, "webhook_not_found", "no webhook "+chi.URLParam(r, "id")))
		return
	}
	if list == nil {
		list = []webhooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": list})
}

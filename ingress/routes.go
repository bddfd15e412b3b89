package ingress

import (
	"github.com/go-chi/chi/v5"

	"github.com/paystream/paystream/ingress/channels"
)

// v1 declares every authenticated route with its scope; POSTs are idempotent.
func (s *Server) v1(r chi.Router) {
	hooks := r.With(requireScope(channels.WebhooksWrite))
	hooks.With(s.idempotent).Post("/webhooks", s.createWebhook)
	hooks.Get("/webhooks", s.listWebhooks)
	hooks.Delete("/webhooks/{id}", s.deleteWebhook)
	hooks.Get("/webhooks/{id}/deliveries", s.listDeliveries)
}

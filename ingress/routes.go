package ingress

import (
	"github.com/go-chi/chi/v5"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ledger"
)

// v1 declares every authenticated route with its scope; POSTs are idempotent.
func (s *Server) v1(r chi.Router) {
	read := r.With(requireScope(channels.WalletsRead))
	write := r.With(requireScope(channels.WalletsWrite), s.idempotent)
	write.Post("/users", s.createUser)
	read.Get("/users/{id}", s.getUser)
	write.Post("/wallets", s.createWallet)
	read.Get("/wallets/{id}", s.getWallet)
	read.Get("/wallets/{id}/balances", s.walletBalances)
	read.Get("/wallets/{id}/statement", s.walletStatement)
	write.Post("/wallets/{id}/freeze", s.setWalletStatus(ledger.WalletFrozen))
	write.Post("/wallets/{id}/unfreeze", s.setWalletStatus(ledger.WalletActive))
	write.Post("/wallets/{id}/close", s.setWalletStatus(ledger.WalletClosed))

	pays := r.With(requireScope(channels.PaymentsWrite), s.idempotentPayment)
	r.With(requireScope(channels.PaymentsWrite)).Post("/payments", s.paymentRoute().ServeHTTP)
	pays.Post("/payments/{id}/capture", s.operate(OpCapture))
	pays.Post("/payments/{id}/void", s.operate(OpVoid))
	pays.Post("/payments/{id}/adjust", s.operate(OpAdjust))
	pays.Post("/payments/{id}/refund", s.operate(OpRefund))
	r.With(requireScope(channels.PaymentsRead)).Get("/payments/{id}", s.getPayment)
	r.With(requireScope(channels.PaymentsRead), s.idempotent).Post("/fees/preview", s.previewFees)

	hooks := r.With(requireScope(channels.WebhooksWrite))
	hooks.With(s.idempotent).Post("/webhooks", s.createWebhook)
	hooks.Get("/webhooks", s.listWebhooks)
	hooks.Delete("/webhooks/{id}", s.deleteWebhook)
	hooks.Get("/webhooks/{id}/deliveries", s.listDeliveries)
}

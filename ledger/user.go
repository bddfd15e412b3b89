package ledger

import (
	"context"
	"fmt"
)

// UserKind says who a user is to the platform.
type UserKind string

// User kinds.
const (
	Customer UserKind = "customer"
	Merchant UserKind = "merchant"
	Agent    UserKind = "agent"
	Operator UserKind = "operator"
)

// UserID identifies a user.
type UserID int64

// User is a customer, merchant, agent or operator.
type User struct {
	ID          UserID
	Kind        UserKind
	DisplayName string
	KYCLevel    int
	Status      string // active, suspended, closed
}

// CreateUser registers a user and returns it with its id.
func (l *Ledger) CreateUser(ctx context.Context, u User) (User, error) {
	switch u.Kind {
	case Customer, Merchant, Agent, Operator:
	default:
		return User{}, fieldError("kind", ErrInvalid, u.Kind)
	}
	if u.Status == "" {
		u.Status = "active"
	}
	err := l.pool.QueryRow(ctx, `INSERT INTO users (kind, display_name, kyc_level, status) VALUES ($1, $2, $3, $4) RETURNING id`,
		u.Kind, u.DisplayName, u.KYCLevel, u.Status).Scan(&u.ID)
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	return u, nil
}

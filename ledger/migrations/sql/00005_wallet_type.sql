-- +goose Up
-- The wallet type (personal, business, ...) selects fee definitions and limits.
ALTER TABLE wallets ADD COLUMN wallet_type text NOT NULL DEFAULT 'personal'
    CHECK (wallet_type ~ '^[a-z_]{1,32}$');

-- +goose Down
ALTER TABLE wallets DROP COLUMN wallet_type;

-- +goose Up
-- Every accepted payment inserts one idempotency key and one status row. Their foreign
-- keys to channels ran a trigger per row that locked the channel's row (FOR KEY SHARE),
-- so every concurrent request of a channel queued on, and shared, that one row lock. The
-- ingress only writes keys of a channel it has just authenticated, and channels are
-- revoked, never deleted, so the check guarded against nothing that can happen.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_channel_key_fkey;
ALTER TABLE payment_status DROP CONSTRAINT payment_status_channel_key_fkey;

-- A key is inserted in flight and updated once with its answer; a status row is updated
-- by its outcome. Room left on each page lets those updates stay on the page (HOT), with
-- no new index entries.
ALTER TABLE idempotency_keys SET (fillfactor = 60);
ALTER TABLE payment_status SET (fillfactor = 60);

-- +goose Down
ALTER TABLE payment_status RESET (fillfactor);
ALTER TABLE idempotency_keys RESET (fillfactor);
ALTER TABLE payment_status ADD CONSTRAINT payment_status_channel_key_fkey
    FOREIGN KEY (channel_key) REFERENCES channels (key_id);
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_channel_key_fkey
    FOREIGN KEY (channel_key) REFERENCES channels (key_id);

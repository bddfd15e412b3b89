-- +goose Up
-- A payment's 202 answer is not stored when its outcome comes soon (see answerDelay in
-- the ingress): a retry is answered from the status and outcome rows instead. That holds
-- only for a request whose answer was that 202, which its claim records here: not one
-- that asked to wait for the outcome (its answer may be the payment itself, a 200), nor a
-- key claimed again after a server error let it go (the outcome found may be an earlier
-- request's, and the new one may yet fail).
ALTER TABLE payment_status ADD COLUMN answer_derived boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE payment_status DROP COLUMN answer_derived;

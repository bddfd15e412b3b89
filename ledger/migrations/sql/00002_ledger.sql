-- +goose Up
-- The double-entry ledger. Only package ledger writes these tables.
--
-- Sign convention: an account's balance is credits minus debits (the platform's view of
-- a liability such as e-money). Asset accounts (safeguarding bank, connector clearing)
-- therefore carry negative balances.

CREATE TABLE subsidiaries (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Z0-9_]{2,16}$'),
    name          text NOT NULL,
    base_currency text NOT NULL REFERENCES currencies (code),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- VAT rates per subsidiary and category, effective from a date.
CREATE TABLE vat_rates (
    subsidiary_id text NOT NULL REFERENCES subsidiaries (id),
    category      text NOT NULL,
    valid_from    date NOT NULL,
    rate          numeric(9, 6) NOT NULL CHECK (rate >= 0 AND rate < 1),
    PRIMARY KEY (subsidiary_id, category, valid_from)
);

CREATE TABLE users (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('customer', 'merchant', 'agent', 'operator')),
    display_name text NOT NULL,
    kyc_level    smallint NOT NULL DEFAULT 0 CHECK (kyc_level BETWEEN 0 AND 3),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallets (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    subsidiary_id text NOT NULL REFERENCES subsidiaries (id),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    fee_group     text NOT NULL DEFAULT 'default',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallets_user ON wallets (user_id);

-- Accounts: wallet accounts (wallet_id set) and system accounts (wallet_id null, ref names
-- the connector, campaign or counter-subsidiary). currency, purpose, shards, no_overdraft
-- and credit_only never change after creation (the ledger caches them); closed, frozen,
-- min_balance and allowed_mcc may, and are read under lock at every posting.
CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subsidiary_id text NOT NULL REFERENCES subsidiaries (id),
    wallet_id     bigint REFERENCES wallets (id),
    purpose       text NOT NULL CHECK (purpose IN (
                      'main', 'restricted', 'reserve', 'deposit', 'points',
                      'safeguarding', 'connector_clearing', 'fee_revenue', 'vat_payable',
                      'campaign_budget', 'inter_subsidiary', 'fx_position', 'points_liability',
                      'adjustment')),
    ref           text NOT NULL DEFAULT '',
    currency      text NOT NULL REFERENCES currencies (code),
    -- debits may not take credits - debits below min_balance; a negative min_balance is an
    -- overdraft limit.
    no_overdraft  boolean NOT NULL DEFAULT false,
    min_balance   numeric NOT NULL DEFAULT 0,
    credit_only   boolean NOT NULL DEFAULT false,
    frozen        boolean NOT NULL DEFAULT false,
    closed        boolean NOT NULL DEFAULT false,
    allowed_mcc   text[],
    -- a hot account spreads credits over this many balance rows (0 = one row only)
    shards        smallint NOT NULL DEFAULT 0 CHECK (shards BETWEEN 0 AND 64),
    -- debits spread too, each shard keeping its own balance >= 0 (campaign budgets)
    shard_debits  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT shard_debits OR (shards > 0 AND min_balance = 0)),
    CHECK ((wallet_id IS NULL) = (purpose IN ('safeguarding', 'connector_clearing', 'fee_revenue',
        'vat_payable', 'campaign_budget', 'inter_subsidiary', 'fx_position', 'points_liability', 'adjustment')))
);
CREATE UNIQUE INDEX accounts_wallet ON accounts (wallet_id, currency, purpose) WHERE wallet_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_system ON accounts (subsidiary_id, purpose, currency, ref) WHERE wallet_id IS NULL;

-- Cached balances. Shard 0 takes every debit of an account with a balance rule; shards
-- 1..accounts.shards take credits of hot accounts, one per partition group, so postings
-- from different partitions never wait for each other on a hot account.
CREATE TABLE account_balances (
    account_id      bigint NOT NULL REFERENCES accounts (id),
    shard           smallint NOT NULL,
    debits_pending  numeric NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted   numeric NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending numeric NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted  numeric NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    -- The balance rule as the database enforces it, a backstop under the ledger's own
    -- check: set where one row alone must hold the minimum (shard 0 of a no-overdraft
    -- account without shards; every shard of a ShardDebits account), null elsewhere.
    floor           numeric,
    PRIMARY KEY (account_id, shard),
    CHECK (floor IS NULL OR credits_posted - debits_posted - debits_pending >= floor)
) WITH (fillfactor = 70);

-- One row per payment id: the idempotency record and the stored outcome of Post, with
-- the ids of its transfers (so transfers need no index on the payment id).
CREATE TABLE postings (
    payment_id   text PRIMARY KEY,
    digest       bytea NOT NULL,
    status       text NOT NULL CHECK (status IN ('posted', 'rejected')),
    reason       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT '',
    transfer_ids bigint[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE transfer_ids AS bigint CACHE 1000;

-- Transfers are immutable. amount moves posted funds; pending_amount changes the pending
-- columns (positive reserves, negative releases), so every balance column is a sum over
-- transfers. Account ids carry no foreign key: the writer checked them under lock, and
-- paystream verify checks them again; per-row FK triggers would halve the posting rate.
CREATE TABLE transfers (
    id                bigint PRIMARY KEY,
    payment_id        text NOT NULL,
    code              text NOT NULL,
    debit_account_id  bigint NOT NULL,
    credit_account_id bigint NOT NULL,
    debit_shard       smallint NOT NULL,
    credit_shard      smallint NOT NULL,
    amount            numeric NOT NULL CHECK (amount >= 0),
    pending_amount    numeric NOT NULL DEFAULT 0,
    currency          text NOT NULL,
    hold_id           bigint,
    created_at        timestamptz NOT NULL,
    -- Each side's account item: the running posted and pending balance (credits minus
    -- debits) of that side's balance row right after this transfer.
    debit_balance          numeric NOT NULL,
    debit_pending_balance  numeric NOT NULL,
    credit_balance         numeric NOT NULL,
    credit_pending_balance numeric NOT NULL,
    -- the same account on both sides only moves funds between its shards (Rebalance)
    CHECK (debit_account_id <> credit_account_id OR debit_shard <> credit_shard),
    CHECK (amount > 0 OR pending_amount <> 0)
);
-- A payment's transfers are found through postings.transfer_ids, holds and hold_ops; an
-- index on payment_id would cost a random text-index insert per transfer.
CREATE INDEX transfers_hold ON transfers (hold_id) WHERE hold_id IS NOT NULL;

-- The account items: one per side of a transfer, stored on the transfer row itself (the
-- running balances above) and found through one index per side, in statement order. A
-- statement merges the two index scans; a balance at a time is the last item at or
-- before it on each side. Keeping the items on the transfer row spares a second heap
-- tuple and its WAL per side; the index entries are the same as a separate items table.
CREATE INDEX transfers_debit_items ON transfers (debit_account_id, created_at, id, debit_shard);
CREATE INDEX transfers_credit_items ON transfers (credit_account_id, created_at, id, credit_shard);

-- +goose StatementBegin
CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();

-- Holds: a reservation on account_id in favour of counter_account_id.
-- remaining = held - captured - released is what is still pending.
CREATE TABLE holds (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner              text NOT NULL,
    payment_id         text NOT NULL,
    account_id         bigint NOT NULL REFERENCES accounts (id),
    counter_account_id bigint NOT NULL REFERENCES accounts (id),
    credit_shard       smallint NOT NULL,
    currency           text NOT NULL REFERENCES currencies (code),
    held               numeric NOT NULL CHECK (held >= 0),
    captured           numeric NOT NULL DEFAULT 0 CHECK (captured >= 0),
    released           numeric NOT NULL DEFAULT 0 CHECK (released >= 0),
    refunded           numeric NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    overcapture_limit  numeric NOT NULL DEFAULT 0 CHECK (overcapture_limit >= 0),
    overcaptured       numeric NOT NULL DEFAULT 0 CHECK (overcaptured >= 0),
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (captured + released <= held),
    CHECK (refunded <= captured),
    CHECK (overcaptured <= overcapture_limit)
);
CREATE INDEX holds_payment ON holds (payment_id);
CREATE INDEX holds_expiry ON holds (expires_at) WHERE expires_at IS NOT NULL AND held > captured + released;

-- Every hold operation, unique per owner and external id so a retry never repeats it.
CREATE TABLE hold_ops (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner        text NOT NULL,
    external_id  text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('reserve', 'adjust', 'capture', 'void', 'refund',
                     'cancel', 'credit', 'authorize', 'expire')),
    hold_id      bigint REFERENCES holds (id),
    ref_op_id    bigint REFERENCES hold_ops (id),
    payment_id   text NOT NULL,
    amount       numeric NOT NULL,
    refunded     numeric NOT NULL DEFAULT 0,
    cancelled    boolean NOT NULL DEFAULT false,
    digest       bytea NOT NULL,
    transfer_id  bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, external_id),
    CHECK (refunded >= 0 AND (refunded = 0 OR refunded <= amount))
);
CREATE INDEX hold_ops_ref ON hold_ops (ref_op_id) WHERE ref_op_id IS NOT NULL;
CREATE INDEX hold_ops_payment ON hold_ops (payment_id) WHERE hold_id IS NULL;

-- +goose Down
DROP TABLE hold_ops;
DROP TABLE holds;
DROP TABLE transfers;
DROP FUNCTION ledger_immutable;
DROP SEQUENCE transfer_ids;
DROP TABLE postings;
DROP TABLE account_balances;
DROP TABLE accounts;
DROP TABLE wallets;
DROP TABLE users;
DROP TABLE vat_rates;
DROP TABLE subsidiaries;

-- +goose Up
-- ledger_expect_rows fails the statement that calls it when a count is not the one
-- expected. The posting batch queues its COMMIT behind its writes, in the same pipeline,
-- so a count checked by the client would come too late to stop it; a failed statement
-- makes PostgreSQL skip the rest of the pipeline, COMMIT included. A NULL on either side
-- is a mismatch too, never a silent pass (hence no STRICT).
-- +goose StatementBegin
CREATE FUNCTION ledger_expect_rows(what text, got bigint, want bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION '%: % rows, want %', what, got, want USING ERRCODE = 'cardinality_violation';
    END IF;
    RETURN got;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_expect_rows;

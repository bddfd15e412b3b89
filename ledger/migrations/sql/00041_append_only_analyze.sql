-- +goose Up
-- The payments' largest tables only grow, and autovacuum analyzed each of them every
-- minute at 2,500 payments/s (once a table grows by a tenth, the default). Their plans do
-- not hang on it: the row counts come from the vacuums their inserts trigger, and the
-- statements that touch them probe keys. The analyzes cost more as the tables grew, 0.9 s
-- of CPU in the second minute of a run and 2.2 s in the fifth, in a burst of a few
-- seconds on a machine already short of CPU. Analyzed once they have doubled, they are
-- analyzed about as often while small and a few times a day when large.
ALTER TABLE transfers SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE postings SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE payment_status SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE payment_outcomes SET (autovacuum_analyze_scale_factor = 1.0);

-- +goose Down
ALTER TABLE payment_outcomes RESET (autovacuum_analyze_scale_factor);
ALTER TABLE payment_status RESET (autovacuum_analyze_scale_factor);
ALTER TABLE postings RESET (autovacuum_analyze_scale_factor);
ALTER TABLE transfers RESET (autovacuum_analyze_scale_factor);

package ingress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/ingress/problem"
)

// HeaderIdempotencyKey names the header every POST must carry.
const HeaderIdempotencyKey = "Idempotency-Key"

// Idempotency timing.
const (
	// KeyRetention is how long answers are kept for replay (the API promises 24 h).
	KeyRetention = 48 * time.Hour
	// inFlightWait bounds how long a concurrent retry waits for the first request's answer.
	inFlightWait = 10 * time.Second
	// abandonAfter is when an unanswered first request (its process died) may be taken over.
	abandonAfter = time.Minute
)

// idempotent makes a POST safe to retry: the same channel and Idempotency-Key with the
// same request get the first answer again; with another request, 422. Concurrent retries
// wait for the first one. A 5xx answer is not kept, so a retry runs again.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return s.idempotency(next, false, nil)
}

// idempotentPayment is idempotent for routes whose effect is a payment record: the stored
// answer is committed without waiting for the disk. A crash can lose that commit; the key
// then stays in flight, a retry takes it over after abandonAfter and produces the record
// again, under the same payment id (derived from the key), which the ledger posts once.
// (A payment whose claim let its outcome stand for its answer is not taken over once the
// outcome is in: the retry gets the 202 from it. See answerDelay.)
func (s *Server) idempotentPayment(next http.Handler) http.Handler {
	return s.idempotency(next, true, nil)
}

// keyProblem checks an Idempotency-Key header.
func keyProblem(key string) *problem.Problem {
	switch {
	case key == "":
		return problem.New(http.StatusBadRequest, "idempotency_key_required", "every POST needs an Idempotency-Key header")
	case len(key) > 255:
		return problem.New(http.StatusBadRequest, "idempotency_key_too_long", "Idempotency-Key is limited to 255 characters")
	}
	return nil
}

// claimFunc records a new key as in flight, reporting false when the key exists. A route
// may claim with more in the same statement, so one commit covers both. hold reports
// that the claim let the answer stand on the payment's outcome (answer_derived): its 202
// is then held rather than kept (see answerDelay).
type claimFunc func(ctx context.Context, ch, key string, hash []byte) (claimed, hold bool, err error)

// claimKey claims a key in idempotency_keys, unless a payment claim wrote its status row
// (see claimPaymentsSQL).
func (s *Server) claimKey(ctx context.Context, ch, key string, hash []byte) (bool, bool, error) {
	var claimed bool
	b := &pgx.Batch{} // one implicit transaction (see lockKeysSQL)
	b.Queue(lockKeysSQL, []int64{keyLock(ch, key)})
	b.Queue(`INSERT INTO idempotency_keys (channel_key, idem_key, request_hash)
		 SELECT $1, $2, $3
		 WHERE NOT EXISTS (SELECT FROM payment_status WHERE payment_id = $4 AND claimed_at IS NOT NULL)
		 ON CONFLICT DO NOTHING`, ch, key, hash, paymentID(ch, key)).
		Exec(func(tag pgconn.CommandTag) error { claimed = tag.RowsAffected() == 1; return nil })
	err := s.pool.SendBatch(ctx, b).Close()
	return claimed && err == nil, false, err
}

// keyLock names the advisory lock under which a channel's key is claimed. A payment's
// key is claimed in payment_status and other routes' keys in idempotency_keys, and no
// unique index spans both: without the lock, a payment and another request claiming one
// key at the same moment would each miss the other's uncommitted row and both run.
func keyLock(ch, key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(ch))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int64(h.Sum64())
}

// lockKeysSQL takes the keys' locks until the transaction ends, in the order given. It
// is a statement of its own: a statement's snapshot is taken when it starts, so the
// claim that follows sees what a claim it waited for committed. The lock and the claim
// go in one pgx batch without BEGIN and COMMIT: a batch is sent as one pipeline closed
// by a single Sync, and PostgreSQL runs the statements before a Sync as one implicit
// transaction, committed at the Sync or rolled back if any fails. Two statements less
// for each group of claims, which at 2,500 payments/s come about 900 times a second.
const lockKeysSQL = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`

// A key is held by a row of idempotency_keys or, for a payment, by its status row; the
// statements below look in both.
const (
	// readKeySQL reads what a retry needs: the first request's hash, its answer if kept,
	// whether it was left unanswered for longer than abandonAfter, and whether a
	// payment's outcome stands for its 202 answer (see answerDelay).
	// A status row whose key no request holds, or that no payment claim wrote, gives an
	// empty hash, which no request has: such a key is refused as reused (a payment
	// claim takes over a let-go one before it gets here).
	readKeySQL = `SELECT k.request_hash, a.status IS NOT NULL, coalesce(a.status, 0), coalesce(a.content_type, ''),
	        coalesce(a.body, ''::bytea), a.status IS NULL AND k.since < now() - $4 * interval '1 second',
	        k.derived AND EXISTS (SELECT FROM payment_outcomes o WHERE o.payment_id = $3)
	 FROM (SELECT request_hash, created_at AS since, 0 AS pref, false AS derived FROM idempotency_keys WHERE channel_key = $1 AND idem_key = $2
	       UNION ALL
	       SELECT coalesce(request_hash, ''::bytea), coalesce(claimed_at, '-infinity'), 1, answer_derived FROM payment_status WHERE payment_id = $3
	       ORDER BY pref LIMIT 1) k
	 LEFT JOIN idempotency_answers a ON a.channel_key = $1 AND a.idem_key = $2`
	// takeOverKeySQL claims again a key left unanswered for longer than abandonAfter.
	takeOverKeySQL = `WITH a AS (SELECT FROM idempotency_answers WHERE channel_key = $1 AND idem_key = $2),
	 k AS (UPDATE idempotency_keys SET created_at = now()
	       WHERE channel_key = $1 AND idem_key = $2 AND created_at < now() - $4 * interval '1 second'
	         AND NOT EXISTS (SELECT FROM a) RETURNING 1),
	 p AS (UPDATE payment_status SET claimed_at = now(), answer_derived = false
	       WHERE payment_id = $3 AND request_hash IS NOT NULL AND claimed_at < now() - $4 * interval '1 second'
	         AND NOT EXISTS (SELECT FROM a)
	         AND NOT (answer_derived AND EXISTS (SELECT FROM payment_outcomes WHERE payment_id = $3))
	       RETURNING 1)
	 SELECT (SELECT count(*) FROM k) + (SELECT count(*) FROM p)`
	// releaseKeySQL lets a key go, with any answer kept meanwhile by a request this one
	// took the key over from: a new request under the key must not get it replayed. A
	// payment's status row stays (an earlier request may have sent the payment) and its
	// key is claimed again by the next request.
	releaseKeySQL = `WITH a AS (DELETE FROM idempotency_answers WHERE channel_key = $1 AND idem_key = $2),
	 p AS (UPDATE payment_status SET request_hash = NULL WHERE payment_id = $3 AND request_hash IS NOT NULL)
	 DELETE FROM idempotency_keys WHERE channel_key = $1 AND idem_key = $2`
)

func (s *Server) idempotency(next http.Handler, asyncAnswer bool, claim claimFunc) http.Handler {
	if claim == nil {
		claim = s.claimKey
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(HeaderIdempotencyKey)
		if p := keyProblem(key); p != nil {
			problem.Write(w, p)
			return
		}
		body := bodyOf(r)
		h := sha256.New()
		h.Write([]byte(r.Method + "\n" + r.URL.RequestURI() + "\n"))
		h.Write(body)
		hash := h.Sum(nil)
		ch := channelFrom(r.Context()).KeyID
		ctx := r.Context()

		deadline := time.Now().Add(inFlightWait)
		misses := 0
		for {
			claimed, hold, err := claim(ctx, ch, key, hash)
			if err != nil {
				s.unavailable(w, "recording idempotency key", err)
				return
			}
			if claimed {
				s.answerAndKeep(w, r, next, ch, key, asyncAnswer, hold)
				return
			}
			var storedHash, stored []byte
			var contentType string
			var status int
			var done, abandoned, outcome bool
			err = s.pool.QueryRow(ctx, readKeySQL, ch, key, paymentID(ch, key), int64(abandonAfter.Seconds())).
				Scan(&storedHash, &done, &status, &contentType, &stored, &abandoned, &outcome)
			if errors.Is(err, pgx.ErrNoRows) {
				// The first request failed and let go of the key: run this one. A key
				// neither claimable nor found would come back here at once: after the
				// first miss the loop waits between tries, and the deadline ends it.
				if time.Now().After(deadline) {
					s.unavailable(w, "claiming idempotency key", errors.New("the key is neither free nor held"))
					return
				}
				if misses++; misses > 1 {
					time.Sleep(25 * time.Millisecond)
				}
				continue
			}
			if err != nil {
				s.unavailable(w, "reading idempotency key", err)
				return
			}
			if !bytes.Equal(storedHash, hash) {
				problem.Write(w, problem.New(http.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used with another request; use a new key for a new request"))
				return
			}
			if !done && outcome {
				done, status, contentType, stored = true, http.StatusAccepted, "application/json", acceptedAnswer(paymentID(ch, key))
			}
			if done {
				w.Header().Set("Content-Type", contentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(status)
				_, _ = w.Write(stored)
				return
			}
			if abandoned {
				// Take the key over from a first request whose process died unanswered.
				var taken int64
				err := s.pool.QueryRow(ctx, takeOverKeySQL, ch, key, paymentID(ch, key), int64(abandonAfter.Seconds())).Scan(&taken)
				if err == nil && taken == 1 {
					s.answerAndKeep(w, r, next, ch, key, asyncAnswer, false)
					return
				}
			}
			if time.Now().After(deadline) {
				w.Header().Set("Retry-After", "1")
				problem.Write(w, problem.New(http.StatusConflict, "request_in_progress",
					"a request with this Idempotency-Key is still being answered; retry shortly"))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	})
}

// answerAndKeep runs the handler and stores its answer under the key, or releases the key
// when the answer is a server error.
func (s *Server) answerAndKeep(w http.ResponseWriter, r *http.Request, next http.Handler, ch, key string, async, hold bool) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	next.ServeHTTP(rec, r)
	// The answer must be kept even if the client has gone: its retry will want it.
	ctx := context.WithoutCancel(r.Context())
	var err error
	if rec.status >= 500 {
		_, err = s.pool.Exec(ctx, releaseKeySQL, ch, key, paymentID(ch, key))
	} else {
		err = s.keepAnswer(ctx, ch, key, rec, async, hold)
	}
	if err != nil {
		s.log.Error("keeping idempotent answer", "key", ch, "err", err)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// recorder captures a handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

func (s *Server) unavailable(w http.ResponseWriter, doing string, err error) {
	s.log.Error(doing, "err", err)
	problem.Write(w, problem.New(http.StatusServiceUnavailable, "unavailable", "the service is unavailable, retry with the same Idempotency-Key"))
}

// PurgeIdempotencyKeys deletes keys and answers older than KeyRetention, returning how
// many keys went; the server runs it hourly. A payment's key stays in its status row, so
// a payment retried later under its key gets 422 for another request, and for the same
// one its 202 again if its outcome stands for it (answer_derived); otherwise, its answer
// gone, the key counts as abandoned and is taken over, and the ledger posts the id at most
// once.
func (s *Server) PurgeIdempotencyKeys(ctx context.Context) (int64, error) {
	var n int64
	// An answer goes with its key, whatever its own age (answers from before migration
	// 00013 carry its time), so a key used again never finds an earlier answer; a payment
	// key's answer goes by age.
	err := s.pool.QueryRow(ctx, `WITH k AS (
		    DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 second' RETURNING channel_key, idem_key),
		 a AS (
		    DELETE FROM idempotency_answers a USING k WHERE a.channel_key = k.channel_key AND a.idem_key = k.idem_key),
		 old AS (
		    DELETE FROM idempotency_answers WHERE created_at < now() - $1 * interval '1 second')
		 SELECT count(*) FROM k`, int64(KeyRetention.Seconds())).Scan(&n)
	return n, err
}

// keepAnswer stores an answer under its key; hold lets a payment's 202 wait for its
// outcome instead (see answerDelay).
func (s *Server) keepAnswer(ctx context.Context, ch, key string, rec *recorder, async, hold bool) error {
	if async {
		a := keptAnswer{ch: ch, key: key, status: rec.status, contentType: rec.header.Get("Content-Type"), body: rec.body.Bytes()}
		if id := paymentID(ch, key); hold && derivable(id, a) {
			a.standsOn = id
			s.delayed.add(id, a)
		} else {
			s.answers.add(a)
		}
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO idempotency_answers (channel_key, idem_key, status, content_type, body)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, ch, key, rec.status, rec.header.Get("Content-Type"), rec.body.Bytes())
	return err
}

// keptAnswer is an answer to store under its key.
type keptAnswer struct {
	ch, key     string
	status      int
	contentType string
	body        []byte
	// standsOn is the payment whose outcome row, once in, answers a retry in this
	// answer's place (a held answer); empty for any other.
	standsOn string
}

// maxAnswerGroup bounds one statement's rows.
const maxAnswerGroup = 512

// writeAnswers stores a group of answers in one statement that commits without waiting for
// the disk (set_config(..., true) is SET LOCAL for the statement's own transaction).
// Nobody waits for it: until it is written, a retry finds its key in flight and waits.
//
// A held answer whose payment's outcome row is in by now is not written: the outcome
// answers its retries. This process drops such answers as it applies their outcomes, but
// with several ingress processes the outcome may have been read by another one (they
// share payments.outcomes' partitions), and without this check every such answer would
// be written all the same. The probe is per row (OFFSET 0 keeps it a subplan): an
// anti-join could read payment_outcomes whole.
func (s *Server) writeAnswers(group []keptAnswer) {
	n := len(group)
	chs, keys, types, standsOn := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	statuses := make([]int32, n)
	bodies := make([][]byte, n)
	for i, a := range group {
		chs[i], keys[i], statuses[i], types[i], bodies[i], standsOn[i] = a.ch, a.key, int32(a.status), a.contentType, a.body, a.standsOn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.keyPool.Exec(ctx, `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
		INSERT INTO idempotency_answers (channel_key, idem_key, status, content_type, body)
		SELECT a.channel_key, a.idem_key, a.status, a.content_type, a.body
		FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bytea[], $6::text[]) AS a(channel_key, idem_key, status, content_type, body, stands_on), async
		WHERE a.stands_on = '' OR NOT EXISTS (SELECT FROM payment_outcomes o WHERE o.payment_id = a.stands_on OFFSET 0)
		ON CONFLICT DO NOTHING`, chs, keys, statuses, types, bodies, standsOn)
	if err != nil {
		// The keys stay in flight: their retries wait, then take them over after abandonAfter
		// and produce the same payment ids again, which the pipeline posts once.
		s.log.Error("keeping idempotent answers", "answers", n, "err", err)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors/fee"
	"github.com/paystream/paystream/processors/loyalty"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/processors/risk"
	"github.com/paystream/paystream/processors/validation"
	"github.com/paystream/paystream/schemas"
)

// Rules are data in PostgreSQL; running stages pick changes up within their refresh
// interval (5 s). Definitions are given as JSON objects with the Go field names of the
// rule types, on --json or standard input, and listed the same way.
type rulesCmd struct {
	Fees      feesCmd      `cmd:"" help:"Fee definitions."`
	Campaigns campaignsCmd `cmd:"" help:"Loyalty campaigns and their budgets."`
	KYCLimits kycLimitsCmd `cmd:"" name:"kyc-limits" help:"Per-transaction limits by KYC level, type and currency (validation)."`
	Limits    limitsCmd    `cmd:"" help:"Velocity and turnover limits (risk)."`
	Watchlist watchlistCmd `cmd:"" help:"Watch-listed users (risk)."`
}

type jsonInput struct {
	JSON string `help:"The rule as a JSON object; read from standard input when empty." placeholder:"OBJECT"`
}

func (j jsonInput) decode(v any) error {
	var r io.Reader = os.Stdin
	if j.JSON != "" {
		r = strings.NewReader(j.JSON)
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reading the rule: %w", err)
	}
	return nil
}

// withLedger opens the configured database (or the running dev's) and its ledger.
func withLedger(a *app, fn func(pool *pgxpool.Pool, l *ledger.Ledger) error) error {
	pool, err := connect(a)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	l, err := ledger.New(a.ctx, pool)
	if err != nil {
		return err
	}
	return fn(pool, l)
}

type feesCmd struct {
	List    struct{}  `cmd:"" help:"List fee definitions, disabled ones included."`
	Create  jsonInput `cmd:"" help:"Create a fee definition."`
	Disable struct {
		ID int64 `arg:""`
	} `cmd:"" help:"Disable a fee definition."`
}

func (c *feesCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, l *ledger.Ledger) error {
		r := fee.NewRules(pool, l)
		switch k.Selected().Name {
		case "list":
			list, err := r.List(a.ctx, "", true)
			if err != nil {
				return err
			}
			return printJSON(a, list)
		case "create":
			var d fee.Definition
			if err := c.Create.decode(&d); err != nil {
				return err
			}
			created, err := r.Create(a.ctx, d)
			if err != nil {
				return err
			}
			return printJSON(a, created)
		default:
			if err := r.Disable(a.ctx, c.Disable.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "disabled fee definition %d\n", c.Disable.ID)
			return nil
		}
	})
}

type campaignsCmd struct {
	List   struct{}  `cmd:"" help:"List campaigns with their budgets."`
	Create jsonInput `cmd:"" help:"Create a campaign (opens its budget account)."`
	Stop   struct {
		ID string `arg:""`
	} `cmd:"" help:"Stop a campaign."`
	Fund struct {
		ID     string `arg:""`
		Amount string `required:"" help:"Amount to credit to the budget, from the subsidiary's adjustment account."`
	} `cmd:"" help:"Fund a campaign's budget."`
}

func (c *campaignsCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, l *ledger.Ledger) error {
		r := loyalty.NewRules(pool, l)
		switch k.Selected().Name {
		case "list":
			list, err := r.List(a.ctx, "", true)
			if err != nil {
				return err
			}
			type row struct {
				loyalty.Campaign
				Budget *loyalty.Budget `json:",omitempty"`
			}
			out := []row{}
			for _, cp := range list {
				x := row{Campaign: cp}
				if b, err := r.Budget(a.ctx, cp.ID); err == nil {
					x.Budget = &b
				}
				out = append(out, x)
			}
			return printJSON(a, out)
		case "create":
			var cp loyalty.Campaign
			if err := c.Create.decode(&cp); err != nil {
				return err
			}
			created, err := r.Create(a.ctx, cp)
			if err != nil {
				return err
			}
			return printJSON(a, created)
		case "stop":
			if err := r.Stop(a.ctx, c.Stop.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "stopped campaign %s\n", c.Stop.ID)
			return nil
		default:
			amount, err := decimal.NewFromString(c.Fund.Amount)
			if err != nil {
				return fmt.Errorf("--amount %q is not a decimal", c.Fund.Amount)
			}
			cp, err := r.Get(a.ctx, c.Fund.ID)
			if err != nil {
				return err
			}
			source, err := l.SystemAccount(a.ctx, cp.Subsidiary, ledger.Adjustments, cp.Currency, "")
			if err != nil {
				if source, err = l.OpenSystemAccount(a.ctx, cp.Subsidiary, ledger.Adjustments, cp.Currency, "", ledger.Rules{}); err != nil {
					return err
				}
			}
			posting, err := r.FundingPosting(a.ctx, cp.ID, "fund-"+cp.ID+"-"+pipeline.NewEventID(), source.ID, amount)
			if err != nil {
				return err
			}
			if _, err := l.Post(a.ctx, posting); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "funded campaign %s with %s %s\n", cp.ID, amount, cp.Currency)
			return nil
		}
	})
}

type kycLimitsCmd struct {
	List struct{}  `cmd:"" help:"List KYC limits."`
	Set  jsonInput `cmd:"" help:"Set a KYC limit."`
}

func (c *kycLimitsCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, _ *ledger.Ledger) error {
		r := validation.NewRules(pool)
		if k.Selected().Name == "list" {
			list, err := r.ListKYCLimits(a.ctx)
			if err != nil {
				return err
			}
			return printJSON(a, list)
		}
		var lim validation.KYCLimit
		if err := c.Set.decode(&lim); err != nil {
			return err
		}
		if err := r.SetKYCLimit(a.ctx, lim); err != nil {
			return err
		}
		fmt.Fprintln(a.out, "KYC limit set")
		return nil
	})
}

type limitsCmd struct {
	List struct{}  `cmd:"" help:"List risk limits."`
	Set  jsonInput `cmd:"" help:"Set a risk limit."`
}

func (c *limitsCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, _ *ledger.Ledger) error {
		r := risk.NewRules(pool)
		if k.Selected().Name == "list" {
			list, err := r.ListLimits(a.ctx)
			if err != nil {
				return err
			}
			return printJSON(a, list)
		}
		var lim risk.Limit
		if err := c.Set.decode(&lim); err != nil {
			return err
		}
		if err := r.SetLimit(a.ctx, lim); err != nil {
			return err
		}
		fmt.Fprintln(a.out, "risk limit set")
		return nil
	})
}

type watchlistCmd struct {
	List struct{} `cmd:"" help:"List watch-listed users."`
	Add  struct {
		User   string `arg:"" help:"User id (usr_...)."`
		Action string `default:"review" enum:"review,reject" help:"review or reject."`
		Reason string `help:"Reason code decisions carry (default watch_listed)."`
	} `cmd:"" help:"Watch-list a user."`
	Remove struct {
		User string `arg:"" help:"User id (usr_...)."`
	} `cmd:"" help:"Take a user off the watch list."`
}

func (c *watchlistCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, _ *ledger.Ledger) error {
		w := risk.NewWatchList(pool)
		switch k.Selected().Name {
		case "list":
			list, err := w.List(a.ctx)
			if err != nil {
				return err
			}
			return printJSON(a, list)
		case "add":
			id, ok := ledger.ParseUserRef(c.Add.User)
			if !ok {
				return fmt.Errorf("%q is not a user id", c.Add.User)
			}
			return w.Add(a.ctx, risk.WatchEntry{User: id, Action: c.Add.Action, ReasonCode: c.Add.Reason})
		default:
			id, ok := ledger.ParseUserRef(c.Remove.User)
			if !ok {
				return fmt.Errorf("%q is not a user id", c.Remove.User)
			}
			return w.Remove(a.ctx, id)
		}
	})
}

type reviewCmd struct {
	List    struct{} `cmd:"" help:"List payments held for review, oldest first."`
	Approve struct {
		ID string `arg:"" help:"Payment id."`
	} `cmd:"" help:"Approve a held payment: it continues down the chain."`
	Reject struct {
		ID     string `arg:"" help:"Payment id."`
		Reason string `help:"Reason code (default review_rejected)."`
	} `cmd:"" help:"Reject a held payment."`
}

func (c *reviewCmd) Run(a *app, k *kong.Context) error {
	return withLedger(a, func(pool *pgxpool.Pool, _ *ledger.Ledger) error {
		brokers := kafkaBrokers(a)
		producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return err
		}
		defer producer.Close()
		serde, err := schemas.NewSerde(a.ctx, a.cfg.SchemaRegistryURL)
		if err != nil {
			return err
		}
		rv := risk.NewReviews(pool, serde, producer)
		switch k.Selected().Name {
		case "list":
			list, err := rv.List(a.ctx)
			if err != nil {
				return err
			}
			return printJSON(a, list)
		case "approve":
			if err := rv.Approve(a.ctx, c.Approve.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "approved %s\n", c.Approve.ID)
			return nil
		default:
			if err := rv.Reject(a.ctx, c.Reject.ID, c.Reject.Reason); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "rejected %s\n", c.Reject.ID)
			return nil
		}
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/paystream/paystream/ingress/client"
)

type callCmd struct {
	Method string `arg:"" enum:"GET,POST,DELETE" help:"GET, POST or DELETE."`
	Path   string `arg:"" help:"Path with query, e.g. /v1/wallets/wal_1/balances."`
	Body   string `arg:"" optional:"" help:"JSON body of a POST."`
	Creds  string `help:"Channel credentials file (default <data>/dev-channel.json)." placeholder:"FILE"`
	Wait   int    `help:"Prefer: wait=N seconds for a payment's outcome." default:"0"`
	Key    string `help:"Idempotency-Key of a POST (default: a new one)." placeholder:"KEY"`
}

func (callCmd) Help() string {
	return "Signs and sends one API request as a channel and prints the answer: the quickest way to try " +
		"the API of a running paystream dev, whose demo channel it uses by default."
}

func (c callCmd) Run(a *app) error {
	creds := c.Creds
	if creds == "" {
		creds = filepath.Join(a.cfg.DataDir, "dev-channel.json")
	}
	cl, err := client.FromFile(creds)
	if err != nil {
		return err
	}
	cl.MaxAttempts = 3
	var body any
	if c.Body != "" {
		body = []byte(c.Body)
	}
	var header []http.Header
	if c.Wait > 0 {
		header = append(header, http.Header{"Prefer": {"wait=" + strconv.Itoa(c.Wait)}})
	}
	ctx, cancel := context.WithTimeout(a.ctx, time.Duration(c.Wait+30)*time.Second)
	defer cancel()
	resp, err := cl.Do(ctx, c.Method, c.Path, body, c.Key, nil, header...)
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Problem != nil {
		b, _ := json.MarshalIndent(apiErr.Problem, "", "  ")
		fmt.Fprintf(a.out, "HTTP %d\n%s\n", apiErr.Status, b)
		return fmt.Errorf("request refused: %s", apiErr.Problem.Code)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "HTTP %d\n", resp.Status)
	var pretty bytes.Buffer
	if json.Indent(&pretty, resp.Body, "", "  ") == nil {
		fmt.Fprintln(a.out, pretty.String())
	} else if len(resp.Body) > 0 {
		fmt.Fprintln(a.out, string(resp.Body))
	}
	return nil
}

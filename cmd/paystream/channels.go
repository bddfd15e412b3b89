package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
)

type channelsCmd struct {
	Create channelsCreateCmd `cmd:"" help:"Create a channel; prints its key id and secret (shown only once) as JSON."`
	List   channelsListCmd   `cmd:"" help:"List channels (never their secrets) as JSON."`
	Revoke channelsRevokeCmd `cmd:"" help:"Revoke a channel's key."`
}

type channelsCreateCmd struct {
	Name      string `required:"" help:"Channel name."`
	Scopes    string `default:"all" help:"Comma-separated scopes (wallets:read, wallets:write, payments:read, payments:write, webhooks:write) or all."`
	RateLimit int    `default:"1000" help:"Requests per second."`
}

type channelsListCmd struct{}

type channelsRevokeCmd struct {
	KeyID string `arg:"" help:"Key id of the channel."`
}

// channelStore connects to the database (configured, or the private server of a
// `paystream dev` on <data>) and opens the channel store with the master key.
func channelStore(a *app) (*channels.Store, func(), error) {
	key, err := masterKey(a, false)
	if err != nil {
		return nil, nil, err
	}
	pool, err := connect(a)
	if err != nil {
		return nil, nil, err
	}
	s, err := channels.NewStore(pool, key)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return s, pool.Close, nil
}

// masterKey returns PAYSTREAM_MASTER_KEY, or the one in <data>/master.key, generating it
// there when generate is set (paystream dev).
func masterKey(a *app, generate bool) ([]byte, error) {
	if a.cfg.MasterKey != "" {
		k, err := channels.ParseMasterKey(a.cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("PAYSTREAM_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(a.cfg.DataDir, "master.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && generate {
		b = []byte(channels.NewMasterKey())
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("no PAYSTREAM_MASTER_KEY and no %s: %w", path, err)
	}
	k, err := channels.ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func (c channelsCreateCmd) Run(a *app) error {
	scopes, err := channels.ParseScopes(c.Scopes)
	if err != nil {
		return err
	}
	s, done, err := channelStore(a)
	if err != nil {
		return err
	}
	defer done()
	ch, err := s.Create(a.ctx, c.Name, scopes, c.RateLimit)
	if err != nil {
		return err
	}
	return printJSON(a, map[string]any{"key_id": ch.KeyID, "secret": ch.Secret, "name": ch.Name,
		"scopes": ch.Scopes, "rate_limit": ch.RateLimit})
}

func (channelsListCmd) Run(a *app) error {
	s, done, err := channelStore(a)
	if err != nil {
		return err
	}
	defer done()
	list, err := s.List(a.ctx)
	if err != nil {
		return err
	}
	if list == nil {
		list = []channels.Channel{}
	}
	return printJSON(a, list)
}

func (c channelsRevokeCmd) Run(a *app) error {
	s, done, err := channelStore(a)
	if err != nil {
		return err
	}
	defer done()
	if err := s.Revoke(a.ctx, c.KeyID); err != nil {
		return fmt.Errorf("revoking %s: %w", c.KeyID, err)
	}
	fmt.Fprintf(a.out, "revoked %s\n", c.KeyID)
	return nil
}

func printJSON(a *app, v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// devChannel makes sure the demo channel of `paystream dev` exists and its credentials
// are in <data>/dev-channel.json.
func devChannel(ctx context.Context, s *channels.Store, dataDir, baseURL string) (client.Credentials, error) {
	path := filepath.Join(dataDir, "dev-channel.json")
	if b, err := os.ReadFile(path); err == nil {
		var c client.Credentials
		if json.Unmarshal(b, &c) == nil {
			if _, err := s.Lookup(ctx, c.KeyID); err == nil {
				c.BaseURL = baseURL
				return c, writeCreds(path, c)
			}
		}
	}
	ch, err := s.Create(ctx, "dev", channels.AllScopes, 100_000)
	if err != nil {
		return client.Credentials{}, err
	}
	c := client.Credentials{BaseURL: baseURL, KeyID: ch.KeyID, Secret: ch.Secret}
	return c, writeCreds(path, c)
}

func writeCreds(path string, c client.Credentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

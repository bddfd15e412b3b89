package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"

	"github.com/paystream/paystream/internal/config"
)

// Docker cannot run on our machines, so this checks what it can of docker-compose.yml:
// every paystream service runs a subcommand and flags that exist and sets only
// environment variables the configuration reads.
func TestComposeFileUsesRealSubcommandsAndSettings(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Healthcheck any               `yaml:"healthcheck"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("parsing docker-compose.yml: %v", err)
	}
	known := config.EnvVars()
	var paystream int
	for name, svc := range compose.Services {
		if !strings.HasPrefix(svc.Image, "paystream") {
			if svc.Healthcheck == nil {
				t.Errorf("infrastructure service %s has no health check", name)
			}
			continue
		}
		paystream++
		if len(svc.Command) == 0 {
			t.Errorf("service %s runs no subcommand", name)
			continue
		}
		var c cli
		parser, err := kong.New(&c, kong.Exit(func(int) {}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(svc.Command); err != nil {
			t.Errorf("service %s: command %v does not parse: %v", name, svc.Command, err)
		}
		for k := range svc.Environment {
			if strings.HasPrefix(k, "PAYSTREAM_") && !slices.Contains(known, k) {
				t.Errorf("service %s sets %s, which the configuration does not read", name, k)
			}
		}
		for dep := range svc.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	if paystream == 0 {
		t.Fatal("no paystream service in docker-compose.yml")
	}
}

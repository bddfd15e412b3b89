//go:build !testcontainers

package testenv

import (
	"context"
	"errors"
)

var errNoContainerBuild = errors.New(EnvContainers + "=1 needs a build with -tags testcontainers")

func containerPostgres(context.Context) (string, func(), error) {
	return "", nil, errNoContainerBuild
}

func containerKafka(context.Context) ([]string, func(), error) {
	return nil, nil, errNoContainerBuild
}

package main

import (
	"fmt"
	"runtime/debug"
)

type versionCmd struct{}

func (versionCmd) Run(a *app) error {
	version, revision := "devel", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
		fmt.Fprintf(a.out, "paystream %s %s (%s)\n", version, revision, bi.GoVersion)
		return nil
	}
	fmt.Fprintf(a.out, "paystream %s\n", version)
	return nil
}

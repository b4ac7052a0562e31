package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
)

// suite runs the conformance suite. It arrives with the suite issue.
func suite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usagef("the conformance suite is not built yet; use `conformance serve` and `conformance client <url>`")
}

// checkURL accepts ws:// and wss:// URLs with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return usagef("target %q: %v", s, err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return usagef("target %q: want a ws:// or wss:// URL with a host", s)
	}
	return nil
}

var _ = fmt.Sprint

// Command edged is the edge gateway daemon: see the README for its use.
package main

import (
	"fmt"
	"os"
)

// Set at build time by the Makefile.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	fmt.Fprintln(os.Stderr, "edged", version, commit)
	os.Exit(2)
}

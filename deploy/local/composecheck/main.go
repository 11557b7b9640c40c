// composecheck loads compose files with compose-go, the Compose specification's reference loader (the library
// `docker compose` is built on): the files are parsed (duplicate keys refused), validated against the
// specification's JSON Schema, interpolated and normalised exactly as Compose would before running them.
//
//	composecheck deploy/compose.yaml [more.yaml ...]
//
// Exit 0 and the services' names when the project is valid; exit 1 and the loader's error otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE [FILE ...]  (validate compose files against the Compose specification)")
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		os.Exit(0)
	}
	files := os.Args[1:]
	options, err := cli.NewProjectOptions(
		files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv,
		cli.WithName("composecheck"),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("valid: %d services: %v\n", len(names), names)
}

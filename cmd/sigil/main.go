// Command sigil runs and manages the Sigil security token service. See
// CONTRACT.md for the commands, flags and outputs, which outside tests rely
// on; this package holds only flags, environment, config file, signals and
// wiring.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(m.Run(ctx, os.Args[1:]))
}

// Main is the program with its environment injected, so tests can run it.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Ready, when set, is called by serve and dev once the server accepts
	// requests, with its public and admin addresses.
	Ready func(public, admin string)
}

// usageError marks bad usage: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// Run executes one command line and returns the exit code: 0 on success,
// 1 on failure, 2 on bad usage.
func (m *Main) Run(ctx context.Context, args []string) int {
	err := m.run(ctx, args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(m.Stderr, "sigil: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	var ue *usageError
	if errors.As(err, &ue) || admin.IsValidation(err) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func (m *Main) run(ctx context.Context, args []string) error {
	path, flagArgs, positional := splitArgs(args)
	cmd := findCommand(path)
	if cmd == nil {
		help := slices.Contains(flagArgs, "--help") || slices.Contains(flagArgs, "-help") || slices.Contains(flagArgs, "-h")
		switch {
		case len(path) == 0 && help, len(path) == 1 && path[0] == "help":
			m.printUsage()
			return nil
		case len(path) == 0:
			return usagef("no command given; run \"sigil -h\" for the list of commands")
		}
		return usagef("unknown command %q; run \"sigil -h\" for the list of commands", strings.Join(path, " "))
	}
	o := &options{cfg: config.Default()}
	fs := flag.NewFlagSet("sigil "+cmd.path, flag.ContinueOnError)
	// The flag package would print the whole flag list on every mistake;
	// errors are one line (CONTRACT.md), so it prints nothing and -h
	// prints the list on purpose.
	fs.SetOutput(io.Discard)
	cmd.flags(fs, o)
	if err := fs.Parse(flagArgs); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.printCommandUsage(cmd, fs)
			return nil
		}
		return usagef("%v; run \"sigil %s -h\" for its flags", err, cmd.path)
	}
	if err := m.fillFromEnvAndFile(fs, o); err != nil {
		return err
	}
	if err := o.cfg.Validate(); err != nil {
		return &usageError{err.Error()}
	}
	if len(positional) != cmd.args {
		return usagef("%s takes %d argument(s) (%s), got %d; run \"sigil %s -h\" for help", cmd.path, cmd.args, cmd.argHelp, len(positional), cmd.path)
	}
	o.args = positional
	return cmd.run(ctx, m, o)
}

func (m *Main) printCommandUsage(cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(m.Stderr, "usage: sigil %s [flags] %s\n  %s\n", cmd.path, cmd.argHelp, cmd.summary)
	fs.SetOutput(m.Stderr)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// fillFromEnvAndFile sets every flag not given on the command line from
// SIGIL_<FLAG_NAME>, else from the config file (--config or SIGIL_CONFIG).
func (m *Main) fillFromEnvAndFile(fs *flag.FlagSet, o *options) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	envName := func(name string) string {
		return "SIGIL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	}
	if !set["config"] && fs.Lookup("config") != nil {
		if v := m.Getenv(envName("config")); v != "" {
			o.configFile = v
		}
	}
	var file map[string]string
	if o.configFile != "" {
		var err error
		if file, err = config.File(o.configFile); err != nil {
			return usagef("%v", err)
		}
		for k := range file {
			if fs.Lookup(k) == nil && !knownElsewhere(k) {
				return usagef("config %s: unknown key %q; keys are flag names (nested keys join with \"-\"), see \"sigil %s -h\"", o.configFile, k, cmdPath(fs))
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "config" {
			return
		}
		if v := m.Getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("environment %s=%q: %s", envName(f.Name), v, valueProblem(f, e))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("config %s: key %s: %q: %s", o.configFile, f.Name, v, valueProblem(f, e))
			}
		}
	})
	if v := m.Getenv("SIGIL_ADMIN_TOKEN"); v != "" {
		o.cfg.AdminToken = v
	}
	if v := m.Getenv("SIGIL_MASTER_KEY"); v != "" {
		o.cfg.MasterKey = v
	}
	return err
}

// cmdPath is the command words of a flag set named "sigil WORDS".
func cmdPath(fs *flag.FlagSet) string { return strings.TrimPrefix(fs.Name(), "sigil ") }

// valueProblem says what is wrong with a value that flag f refused, and
// what it wants: the flag package's own error for durations and booleans
// is a bare "parse error".
func valueProblem(f *flag.Flag, err error) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case time.Duration:
		return "not a duration; write one like 30s, 5m or 1h"
	case bool:
		return "not a boolean; write true or false"
	case int, int64, uint, uint64:
		return "not a whole number"
	}
	return err.Error()
}

// knownElsewhere reports whether a config-file key belongs to another
// command's flags, so one file can serve every command.
func knownElsewhere(name string) bool {
	for _, c := range commands {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.flags(fs, &options{})
		if fs.Lookup(name) != nil {
			return true
		}
	}
	return false
}

// isBoolFlag reports whether a flag name takes no value, which splitArgs
// must know to find where the command words are. It asks every command's
// flag set, so a new boolean flag needs no list kept by hand.
func isBoolFlag(name string) bool { return boolFlags()[name] }

var boolFlags = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{"help": true, "h": true}
	for _, c := range commands {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.flags(fs, &options{cfg: config.Default()})
		fs.VisitAll(func(f *flag.Flag) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				out[f.Name] = true
			}
		})
	}
	return out
})

// splitArgs separates the command words, the flags and the positional
// arguments. Flags may stand anywhere after "sigil": before, between or
// after the command words.
func splitArgs(args []string) (path, flags, positional []string) {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			words = append(words, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !isBoolFlag(name) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			words = append(words, a)
		}
	}
	// The longest prefix of words that names a command is the path.
	for n := min(len(words), 2); n > 0; n-- {
		if findCommand(words[:n]) != nil {
			return words[:n], flags, words[n:]
		}
	}
	return words, flags, nil
}

package buffer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edged/edged/telemetry"
)

// The test binary re-executes itself as a helper process when helperEnv is
// set: "crash" appends until it is killed, "memory" buffers 100 000 messages
// and reports its peak RSS. A separate process is what makes a SIGKILL real
// and a peak-RSS figure clean of whatever else the tests did.
const (
	helperEnv     = "EDGED_BUFFER_HELPER"
	helperPathEnv = "EDGED_BUFFER_PATH"
	helperDurEnv  = "EDGED_BUFFER_DURABILITY"
)

func runHelper(mode string) int {
	if mode == "open" {
		return openHelper()
	}
	dur := Full
	if os.Getenv(helperDurEnv) == PowerLossUnsafe.String() {
		dur = PowerLossUnsafe
	}
	b, err := Open(Options{Path: os.Getenv(helperPathEnv), Durability: dur})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	switch mode {
	case "crash":
		return crashHelper(b)
	case "memory":
		return memoryHelper(b)
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 2
}

// crashHelper appends from several goroutines and prints "<goroutine> <i>"
// for each append that returned nil, until it is killed. Its own deadline
// only guards against a parent that died first.
func crashHelper(b *Buffer) int {
	const goroutines = 4
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := b.Append(context.Background(), msg(fmt.Sprintf("g/%d", g), i)); err != nil {
					fmt.Fprintln(os.Stderr, "helper: append:", err)
					os.Exit(3)
				}
				// Printed only after Append returned: this line is the
				// acknowledgement the parent holds the buffer to.
				mu.Lock()
				fmt.Fprintf(out, "%d %d\n", g, i)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// memoryHelper buffers 100 000 messages with 64-byte payloads from 100
// appenders and prints its peak and current RSS.
func memoryHelper(b *Buffer) int {
	const goroutines, each = 100, 1000
	payload := []byte(strings.Repeat("x", 64))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("pi-01/meter%d/voltage", g)
			for range each {
				if err := b.Append(context.Background(), telemetry.Message{Topic: topic, Payload: payload, QoS: 1}); err != nil {
					fmt.Fprintln(os.Stderr, "helper: append:", err)
					os.Exit(3)
				}
			}
		}()
	}
	wg.Wait()
	st := b.Stats()
	fmt.Printf("messages %d\nbytes %d\ncommits %d\n", st.Messages, st.Bytes, st.Commits)
	fmt.Printf("vmhwm_kib %d\nvmrss_kib %d\n", procStatusKiB("VmHWM"), procStatusKiB("VmRSS"))
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "helper: close:", err)
		return 3
	}
	return 0
}

// procStatusKiB reads a "Key:   N kB" line of /proc/self/status; -1 if absent.
func procStatusKiB(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// openHelper opens the buffer and prints how that went, for the permission
// test that runs it as an unprivileged user.
func openHelper() int {
	b, err := Open(Options{Path: os.Getenv(helperPathEnv)})
	if err != nil {
		fmt.Printf("permission=%v %v\n", errors.Is(err, os.ErrPermission), err)
		return 0
	}
	b.Close()
	fmt.Println("opened")
	return 0
}

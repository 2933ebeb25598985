// Command probe is the tiny static HTTP server and client the multi-node test bed's checks run in containers
// (Debian's busybox wget segfaults in the nested engines).
//
//	probe serve [ADDR]                         answer every request with the container's hostname (default :8080)
//	probe fanout NAME PORT WANT [TIMEOUT]      resolve NAME, GET http://IP:PORT/ from every address, until WANT
//	                                           distinct answers were seen (exit 0) or TIMEOUT passed (exit 1);
//	                                           prints one "IP ANSWER" line per address that answered
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe serve [ADDR] | probe fanout NAME PORT WANT [TIMEOUT]")
	}
	switch os.Args[1] {
	case "serve":
		addr := ":8080"
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		host, _ := os.Hostname()
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, host)
		}))
		fail(err.Error())
	case "fanout":
		if len(os.Args) < 5 {
			fail("usage: probe fanout NAME PORT WANT [TIMEOUT]")
		}
		want, err := strconv.Atoi(os.Args[4])
		if err != nil {
			fail("WANT: " + err.Error())
		}
		timeout := time.Minute
		if len(os.Args) > 5 {
			if timeout, err = time.ParseDuration(os.Args[5]); err != nil {
				fail("TIMEOUT: " + err.Error())
			}
		}
		os.Exit(fanout(os.Args[2], os.Args[3], want, timeout))
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fanout(name, port string, want int, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]string{} // address → answer
	var last error
	for {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err != nil {
			last = err
		}
		for _, a := range addrs {
			if body, err := get(ctx, client, "http://"+net.JoinHostPort(a, port)+"/"); err == nil {
				seen[a] = body
			} else {
				last = err
			}
		}
		distinct := map[string]bool{}
		for _, b := range seen {
			distinct[b] = true
		}
		if len(distinct) >= want || ctx.Err() != nil {
			keys := make([]string, 0, len(seen))
			for a := range seen {
				keys = append(keys, a)
			}
			sort.Strings(keys)
			for _, a := range keys {
				fmt.Println(a, seen[a])
			}
			if len(distinct) >= want {
				return 0
			}
			fmt.Fprintf(os.Stderr, "probe: %d distinct answer(s) from %s, want %d; last error: %v\n", len(distinct), name, want, last)
			return 1
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}

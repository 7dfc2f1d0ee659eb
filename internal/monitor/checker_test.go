package monitor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tcp := &TCPCheck{Host: "127.0.0.1", Port: 80}
	for _, tc := range []struct {
		name  string
		check Check
		want  []string // substrings of the error; none for a valid check
	}{
		{"tcp", Check{Key: "k", TCP: tcp}, nil},
		{"http defaults", Check{Key: "k", HTTP: &HTTPCheck{Host: "localhost", Port: 8080}}, nil},
		{"https", Check{Key: "k", HTTP: &HTTPCheck{Scheme: "https", Host: "localhost", Port: 8443, Path: "/healthz"}}, nil},
		{"exec", Check{Key: "k", Exec: &ExecCheck{ContainerID: "abc", Command: []string{"true"}}, Timeout: time.Second}, nil},
		{"no key", Check{TCP: tcp}, []string{"key:"}},
		{"negative timeout", Check{Key: "k", TCP: tcp, Timeout: -time.Second}, []string{"timeout:"}},
		{"none", Check{Key: "k"}, []string{"exec, tcp, http: exactly one must be set, got 0"}},
		{"two", Check{Key: "k", TCP: tcp, HTTP: &HTTPCheck{Host: "h", Port: 1}}, []string{"exactly one must be set, got 2"}},
		{"exec without container", Check{Key: "k", Exec: &ExecCheck{Command: []string{"true"}}}, []string{"exec.containerID:"}},
		{"exec without command", Check{Key: "k", Exec: &ExecCheck{ContainerID: "abc"}}, []string{"exec.command:"}},
		{"exec empty command", Check{Key: "k", Exec: &ExecCheck{ContainerID: "abc", Command: []string{""}}}, []string{"exec.command:"}},
		{"tcp without host", Check{Key: "k", TCP: &TCPCheck{Port: 80}}, []string{"tcp.host:"}},
		{"tcp port 0", Check{Key: "k", TCP: &TCPCheck{Host: "h"}}, []string{"tcp.port: must be between 1 and 65535, got 0"}},
		{"tcp port too big", Check{Key: "k", TCP: &TCPCheck{Host: "h", Port: 65536}}, []string{"tcp.port:"}},
		{"http scheme", Check{Key: "k", HTTP: &HTTPCheck{Scheme: "ftp", Host: "h", Port: 1}}, []string{"http.scheme:"}},
		{"http path", Check{Key: "k", HTTP: &HTTPCheck{Host: "h", Port: 1, Path: "healthz"}}, []string{"http.path:"}},
		{"several at once", Check{HTTP: &HTTPCheck{Port: -1}}, []string{"key:", "http.host:", "http.port:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckerTCP(t *testing.T) {
	open, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = open.Close() }()
	closed, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()

	c := NewChecker(nil)
	for _, tc := range []struct {
		name string
		port int
		want Reason
	}{
		{"listening", open.Addr().(*net.TCPAddr).Port, Passed},
		{"closed", closedPort, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Run(context.Background(), Check{Key: "k", TCP: &TCPCheck{Host: "127.0.0.1", Port: tc.port}, Timeout: 5 * time.Second})
			if r.Reason != tc.want || r.Healthy != (tc.want == Passed) || r.Key != "k" {
				t.Errorf("got %+v, want %s", r, tc.want)
			}
		})
	}
}

func TestCheckerHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "verbose=1" {
			http.Error(w, "query lost", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database down", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
	})
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the checker gives up
	})
	plain := httptest.NewServer(mux)
	defer plain.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()

	c := NewChecker(nil)
	for _, tc := range []struct {
		name    string
		server  *httptest.Server
		scheme  string
		path    string
		want    Reason
		message string
	}{
		{"200", plain, "http", "/ok?verbose=1", Passed, "HTTP 200"},
		{"500", plain, "", "/error", Failed, "HTTP 500: database down"},
		{"404", plain, "", "/missing", Failed, "HTTP 404"},
		{"redirect elsewhere", plain, "", "/redirect", Passed, "HTTP 302"},
		{"hanging", plain, "", "/hang", TimedOut, "deadline exceeded"},
		{"https, unverified", tls, "https", "/ok?verbose=1", Passed, "HTTP 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.server.Listener.Addr().(*net.TCPAddr)
			check := Check{Key: "k", HTTP: &HTTPCheck{Scheme: tc.scheme, Host: "127.0.0.1", Port: addr.Port, Path: tc.path}, Timeout: 300 * time.Millisecond}
			if tc.want != TimedOut {
				check.Timeout = 10 * time.Second
			}
			r := c.Run(context.Background(), check)
			if r.Reason != tc.want || r.Healthy != (tc.want == Passed) || !strings.Contains(r.Message, tc.message) {
				t.Errorf("got %+v, want %s with %q", r, tc.want, tc.message)
			}
			if tc.want == TimedOut && (r.Duration < check.Timeout || r.Duration > check.Timeout+slack) {
				t.Errorf("timed out after %s, want about %s", r.Duration, check.Timeout)
			}
		})
	}
}

// fakeExecer answers exec checks by their command.
type fakeExecer struct{}

func (fakeExecer) ExecSync(ctx context.Context, _ string, cmd []string, _ time.Duration) (stdout, stderr []byte, exitCode int, err error) {
	switch cmd[0] {
	case "true":
		return []byte("fine\n"), nil, 0, nil
	case "false":
		return []byte("out "), []byte("err"), 1, nil
	case "broken":
		return nil, nil, 0, errors.New("no such container")
	case "sleep":
		<-ctx.Done()
		return nil, nil, 0, ctx.Err()
	case "long":
		return []byte(strings.Repeat("x", 2*maxMessage)), nil, 0, nil
	}
	return nil, nil, 127, nil
}

func TestCheckerExec(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		execer  Execer
		ctx     context.Context //nolint:containedctx // a test case's context
		command string
		want    Reason
		message string
	}{
		{"exit 0", fakeExecer{}, context.Background(), "true", Passed, "fine"},
		{"exit 1", fakeExecer{}, context.Background(), "false", Failed, "exit code 1: out err"},
		{"runtime error", fakeExecer{}, context.Background(), "broken", Failed, "exec in container c: no such container"},
		{"timeout", fakeExecer{}, context.Background(), "sleep", TimedOut, "deadline exceeded"},
		{"canceled", fakeExecer{}, canceled, "sleep", Canceled, "canceled"},
		{"output truncated", fakeExecer{}, context.Background(), "long", Passed, "xxx..."},
		{"no runtime", nil, context.Background(), "true", Failed, "no container runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewChecker(tc.execer).Run(tc.ctx, Check{Key: "k", Exec: &ExecCheck{ContainerID: "c", Command: []string{tc.command}}, Timeout: 200 * time.Millisecond})
			if r.Reason != tc.want || r.Healthy != (tc.want == Passed) || !strings.Contains(r.Message, tc.message) {
				t.Errorf("got %+v, want %s with %q", r, tc.want, tc.message)
			}
			if len(r.Message) > maxMessage+len("...") {
				t.Errorf("message of %d bytes, want at most %d", len(r.Message), maxMessage)
			}
		})
	}
}

func TestCheckerInvalid(t *testing.T) {
	r := NewChecker(nil).Run(context.Background(), Check{Key: "k", TCP: &TCPCheck{Host: "h"}})
	if r.Reason != Invalid || r.Healthy || !strings.Contains(r.Message, "tcp.port") {
		t.Errorf("got %+v, want Invalid naming tcp.port", r)
	}
}

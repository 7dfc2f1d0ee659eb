package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// maxMessage bounds Result.Message and the response body or command output it quotes.
const maxMessage = 1024

// Execer runs a command in a container and waits for it, like the CRI's ExecSync. A command that
// ran returns its exit code and a nil error; err is for a command that could not be run.
type Execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int, err error)
}

// Checker runs checks: what runs inside the monitor process. Make one with NewChecker; it is
// safe for concurrent use.
type Checker struct {
	execer Execer
	client *http.Client
	dialer net.Dialer
	clock  clock.PassiveClock
}

// NewChecker returns a Checker that runs exec checks with execer; with a nil execer they fail.
func NewChecker(execer Execer) *Checker {
	return &Checker{
		execer: execer,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:             nil, // node-local checks go direct
				DisableKeepAlives: true,
				// As kubelet's HTTPS probes: the check is whether the endpoint answers, not who it is.
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // G402: see above.
			},
			// Not following redirects makes a redirect a success, as kubelet's probes treat one
			// to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		clock: clock.RealClock{},
	}
}

// Run runs the check within its timeout and returns its result. Run honours ctx: a check whose
// context ends first is unhealthy with Reason TimedOut or Canceled.
func (c *Checker) Run(ctx context.Context, check Check) Result {
	started := c.clock.Now()
	if err := check.Validate(); err != nil {
		return check.unhealthy(Invalid, started, 0, "%v", err)
	}
	timeout := check.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var msg string
	var err error
	switch {
	case check.Exec != nil:
		msg, err = c.exec(ctx, check.Exec, timeout)
	case check.TCP != nil:
		msg, err = c.tcp(ctx, check.TCP)
	default:
		msg, err = c.http(ctx, check.HTTP)
	}
	d := c.clock.Since(started)
	if err != nil {
		return check.unhealthy(failureReason(ctx, err), started, d, "%s", truncate(err.Error()))
	}
	return Result{Key: check.Key, Healthy: true, Reason: Passed, Message: truncate(msg), Started: started, Duration: d}
}

// failureReason tells a check that timed out or was canceled from one that failed.
func failureReason(ctx context.Context, err error) Reason {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return Canceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return TimedOut
	default:
		return Failed
	}
}

func (c *Checker) exec(ctx context.Context, e *ExecCheck, timeout time.Duration) (string, error) {
	if c.execer == nil {
		return "", errors.New("no container runtime to exec in")
	}
	stdout, stderr, code, err := c.execer.ExecSync(ctx, e.ContainerID, e.Command, timeout)
	if err != nil {
		return "", fmt.Errorf("exec in container %s: %w", e.ContainerID, err)
	}
	out := strings.TrimSpace(string(stdout) + string(stderr))
	if code != 0 {
		return "", fmt.Errorf("exit code %d: %s", code, out)
	}
	return out, nil
}

func (c *Checker) tcp(ctx context.Context, t *TCPCheck) (string, error) {
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err // names the address
	}
	_ = conn.Close()
	return "connected to " + addr, nil
}

func (c *Checker) http(ctx context.Context, h *HTTPCheck) (string, error) {
	u, err := h.url()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("User-Agent", "wolfpack-monitor")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err // names the method and URL
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode), nil
}

// url is the check's URL, with the scheme and path defaulted.
func (h *HTTPCheck) url() (string, error) {
	scheme, path := h.Scheme, h.Path
	if scheme == "" {
		scheme = "http"
	}
	if path == "" {
		path = "/"
	}
	raw := scheme + "://" + net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) + path
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("http: %w", err)
	}
	return u.String(), nil
}

// truncate bounds s to maxMessage bytes of valid UTF-8.
func truncate(s string) string {
	if len(s) > maxMessage {
		s = s[:maxMessage] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

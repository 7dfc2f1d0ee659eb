package monitor

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultTimeout is the timeout of a check that sets none, as for a kubelet probe.
const DefaultTimeout = time.Second

// Check is one health check of a resource. Exactly one of Exec, TCP and HTTP is set.
type Check struct {
	// Key is the caller's name for the check, e.g. "ns/name/looksAlive"; results carry it back.
	Key string `json:"key"`
	// Exec runs a command in a container through the container runtime.
	Exec *ExecCheck `json:"exec,omitempty"`
	// TCP opens a TCP connection.
	TCP *TCPCheck `json:"tcp,omitempty"`
	// HTTP sends an HTTP GET.
	HTTP *HTTPCheck `json:"http,omitempty"`
	// Timeout bounds the check; zero means DefaultTimeout. A check without a result in time is
	// unhealthy.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ExecCheck runs Command in the container ContainerID; exit code 0 is healthy.
type ExecCheck struct {
	ContainerID string   `json:"containerID"`
	Command     []string `json:"command"`
}

// TCPCheck is healthy when a TCP connection to Host:Port opens.
type TCPCheck struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// HTTPCheck is healthy when GET Scheme://Host:Port/Path answers with a status from 200 to 399.
// Redirects are not followed: like kubelet's probes, a redirect counts as success.
type HTTPCheck struct {
	// Scheme is "http" (the default) or "https". Certificates are not verified, as by kubelet.
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// Path defaults to "/".
	Path string `json:"path,omitempty"`
}

// Reason says why a Result is what it is.
type Reason string

const (
	// Passed means the check ran and the resource is healthy.
	Passed Reason = "Passed"
	// Failed means the check ran and the resource is not healthy.
	Failed Reason = "Failed"
	// TimedOut means the check gave no result within its timeout.
	TimedOut Reason = "TimedOut"
	// MonitorCrashed means the monitor process exited while the check was running.
	MonitorCrashed Reason = "MonitorCrashed"
	// MonitorHung means the monitor process stopped answering pings while the check was running, and
	// was killed.
	MonitorHung Reason = "MonitorHung"
	// MonitorUnavailable means no monitor process was running to take the check within its timeout
	// (not started yet, restarting, or stopped).
	MonitorUnavailable Reason = "MonitorUnavailable"
	// Invalid means the check is not valid and was not run.
	Invalid Reason = "Invalid"
	// Canceled means the caller's context ended before the check had a result.
	Canceled Reason = "Canceled"
)

// Reasons lists every Reason.
var Reasons = []Reason{Passed, Failed, TimedOut, MonitorCrashed, MonitorHung, MonitorUnavailable, Invalid, Canceled}

// Result is the outcome of a Check. Healthy is true only with Reason Passed.
type Result struct {
	Key     string `json:"key"`
	Healthy bool   `json:"healthy"`
	Reason  Reason `json:"reason"`
	// Message is for people: the error, the status code, the command's output (truncated).
	Message  string        `json:"message,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
}

// Validate says what is wrong with the check, naming each bad field, or returns nil.
func (c *Check) Validate() error {
	var errs []error
	if c.Key == "" {
		errs = append(errs, errors.New("key: must not be empty"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", c.Timeout))
	}
	set := 0
	if c.Exec != nil {
		set++
		errs = append(errs, c.Exec.validate()...)
	}
	if c.TCP != nil {
		set++
		errs = append(errs, c.TCP.validate()...)
	}
	if c.HTTP != nil {
		set++
		errs = append(errs, c.HTTP.validate()...)
	}
	if set != 1 {
		errs = append(errs, fmt.Errorf("exec, tcp, http: exactly one must be set, got %d", set))
	}
	return errors.Join(errs...)
}

func (e *ExecCheck) validate() []error {
	var errs []error
	if e.ContainerID == "" {
		errs = append(errs, errors.New("exec.containerID: must not be empty"))
	}
	if len(e.Command) == 0 || e.Command[0] == "" {
		errs = append(errs, errors.New("exec.command: must name a command"))
	}
	return errs
}

func (t *TCPCheck) validate() []error {
	var errs []error
	if t.Host == "" {
		errs = append(errs, errors.New("tcp.host: must not be empty"))
	}
	if err := validatePort(t.Port); err != nil {
		errs = append(errs, fmt.Errorf("tcp.port: %w", err))
	}
	return errs
}

func (h *HTTPCheck) validate() []error {
	var errs []error
	if s := h.Scheme; s != "" && s != "http" && s != "https" {
		errs = append(errs, fmt.Errorf("http.scheme: must be http or https, got %q", s))
	}
	if h.Host == "" {
		errs = append(errs, errors.New("http.host: must not be empty"))
	}
	if err := validatePort(h.Port); err != nil {
		errs = append(errs, fmt.Errorf("http.port: %w", err))
	}
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		errs = append(errs, fmt.Errorf("http.path: must start with /, got %q", h.Path))
	}
	return errs
}

func validatePort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("must be between 1 and 65535, got %d", port)
	}
	return nil
}

// timeout is the check's timeout with the default applied.
func (c *Check) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// unhealthy is a failed result of the check for reason.
func (c *Check) unhealthy(reason Reason, started time.Time, d time.Duration, format string, args ...any) Result {
	return Result{
		Key:      c.Key,
		Reason:   reason,
		Message:  fmt.Sprintf(format, args...),
		Started:  started,
		Duration: d,
	}
}

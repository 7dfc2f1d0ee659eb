// Package monitor is Wolfpack's Resource Monitor: the node agent's health checks of its resources,
// run in a child process that the agent supervises.
//
// In Microsoft Cluster Server the Cluster Service never calls a resource's LooksAlive or IsAlive
// entry points itself. A separate Resource Monitor process loads the Resource DLLs and polls
// them, so that a resource DLL that hangs or crashes takes down only the monitor; the Cluster
// Service notices, fails the monitor's resources and starts a new monitor. This package keeps
// that split:
//
//   - [Check] describes one node-local check (an exec in a container through the CRI, a TCP
//     connect or an HTTP GET) and [Result] its outcome, with a [Reason].
//   - [Checker] runs checks. It is what runs inside the monitor process.
//   - [Serve] is the monitor process's side of the protocol: it reads checks from the parent,
//     runs them concurrently and writes their results back, and answers pings.
//   - [Supervisor] is the agent's side: it starts the monitor process, sends it checks, gives
//     each check an answer within its timeout whatever the monitor does, notices when the monitor
//     crashes or hangs (stops answering pings), kills it and starts a new one with backoff.
//
// The two processes speak in frames over the child's stdin and stdout; see [MaxFrameSize]. The
// node agent wires it so, re-executing itself as the monitor:
//
//	// node-agent: the Supervisor.
//	metrics := monitor.NewMetrics() // and register metrics.Collectors()
//	sup, err := monitor.NewSupervisor(monitor.Config{Path: "/proc/self/exe", Args: []string{"monitor"}, Metrics: metrics, Logger: log})
//	go sup.Run(ctx)
//	result := sup.Check(ctx, monitor.Check{Key: "ns/name/looksAlive", TCP: &monitor.TCPCheck{Host: "127.0.0.1", Port: 5432}})
//
//	// node-agent monitor: the monitor process. It must write nothing else to stdout.
//	execer := monitor.NewCRIExecer(criEndpoint, 0)
//	defer execer.Close()
//	err := monitor.Serve(ctx, os.Stdin, os.Stdout, monitor.NewChecker(execer))
package monitor

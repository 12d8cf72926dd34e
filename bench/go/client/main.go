// Command client is the Go contender of `npm run bench`: a lean client written the way Consul's
// agent/pool/pool.go uses HashiCorp's libraries, with nothing else on the call path.
//
//   - one TCP connection and one yamux session (yamux.Client with DefaultConfig), opened once;
//   - msgpack-rpc stream clients (net-rpc-msgpackrpc codecs) kept on a LIFO free list, as
//     Consul's Conn.getClient/returnClient: taken from the front, pushed back to the front
//     after a successful call (shrinking the stream's buffers, as Consul does), closed after
//     an error or when maxStreams clients are already idle;
//   - N goroutines calling Test.Echo {Payload, Seq, Note}, the same args the TypeScript
//     contender (bench/rpc-client.ts) sends, with the same check of the reply (Seq and
//     payload length).
//
// Unlike test/interop/go/client there is no fault injection: its frameConn wrapper takes a
// mutex and parses frame headers on every write, which would slow Go down and flatter us.
//
// Build (GOPATH mode, Debian's /usr/share/gocode):
//
//	cd bench/go/client && GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../bin/client .
//
// Prints one JSON line: {calls, ok, failed, seconds, callsPerSec, p50Ms, p99Ms, cpuUsPerCall} (plus "error",
// the first failure, when a call failed). Exits 1 when the server cannot be reached.
package main

import (
	"container/list"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"math/rand"
	"net"
	"os"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

// Preamble bytes: Consul (agent/pool/conn.go) and Nomad (helper/pool/conn.go) number them differently.
const (
	consulRPCMultiplexV2 byte = 0x04
	nomadRPCNomad        byte = 0x01
	nomadRPCMultiplexV2  byte = 0x06
)

// The handle of the interop peers (test/interop/go), which is the one the TypeScript codec is
// written against: raw strings decode as string, WriteExt off so []byte goes out in the str
// family, and schemaless maps decode with string keys.
var msgpackHandle = &codec.MsgpackHandle{RawToString: true, WriteExt: false}

func init() {
	msgpackHandle.MapType = reflect.TypeOf(map[string]interface{}(nil))
}

type EchoArgs struct {
	Payload []byte
	Seq     uint64
	Note    string
}

type EchoReply struct {
	Payload []byte
	Seq     uint64
	Note    string
	Served  uint64
}

// Note is the Note field of every call; bench/rpc-client.ts sends the same string.
const Note = "bench"

// ---------------------------------------------------------------------------------------------
// Consul's Conn: one session and a free list of stream clients.

type streamClient struct {
	stream *yamux.Stream
	codec  *msgpackrpc.MsgpackCodec
}

type conn struct {
	session    *yamux.Session
	nomad      bool
	maxStreams int

	mu      sync.Mutex
	clients *list.List
}

func dial(addr, protocol string, maxStreams int) (*conn, error) {
	tcp, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	// Go's TCP conns have Nagle off by default; say so, as Consul's pool does.
	tcp.(*net.TCPConn).SetNoDelay(true)
	mux := consulRPCMultiplexV2
	if protocol == "nomad" {
		mux = nomadRPCMultiplexV2
	}
	if _, err := tcp.Write([]byte{mux}); err != nil {
		tcp.Close()
		return nil, err
	}
	conf := yamux.DefaultConfig()
	conf.LogOutput = ioutil.Discard
	session, err := yamux.Client(tcp, conf)
	if err != nil {
		tcp.Close()
		return nil, err
	}
	return &conn{session: session, nomad: protocol == "nomad", maxStreams: maxStreams, clients: list.New()}, nil
}

func (c *conn) getClient() (*streamClient, error) {
	c.mu.Lock()
	front := c.clients.Front()
	if front != nil {
		c.clients.Remove(front)
	}
	c.mu.Unlock()
	if front != nil {
		return front.Value.(*streamClient), nil
	}
	stream, err := c.session.OpenStream()
	if err != nil {
		return nil, err
	}
	if c.nomad {
		if _, err := stream.Write([]byte{nomadRPCNomad}); err != nil {
			stream.Close()
			return nil, err
		}
	}
	return &streamClient{stream: stream, codec: msgpackrpc.NewCodecFromHandle(true, true, stream, msgpackHandle)}, nil
}

func (c *conn) returnClient(sc *streamClient) {
	saved := false
	c.mu.Lock()
	if c.clients.Len() < c.maxStreams {
		c.clients.PushFront(sc)
		saved = true
		sc.stream.Shrink()
	}
	c.mu.Unlock()
	if !saved {
		sc.codec.Close()
	}
}

// call is Consul's ConnPool.rpc without the address map: a stream client for one call,
// returned on success, closed on any error.
func (c *conn) call(method string, args, reply interface{}) error {
	sc, err := c.getClient()
	if err != nil {
		return err
	}
	if err := msgpackrpc.CallWithCodec(sc.codec, method, args, reply); err != nil {
		sc.codec.Close()
		return err
	}
	c.returnClient(sc)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Load

type options struct {
	addr        string
	protocol    string
	calls       int64
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	size        int
	maxStreams  int
}

type worker struct {
	lat      []time.Duration
	ok       int64
	failed   int64
	firstErr error
}

var errMismatch = errors.New("echo reply does not match the request (Seq or payload length)")

// phase runs the workers until `calls` calls have started (calls > 0) or until `deadline`.
func phase(c *conn, o *options, payloads [][]byte, calls int64, deadline time.Time) ([]*worker, time.Duration) {
	workers := make([]*worker, o.concurrency)
	var next int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Add(1)
		go func(w *worker, payload []byte) {
			defer wg.Done()
			args := EchoArgs{Payload: payload, Note: Note}
			var reply EchoReply
			for {
				n := atomic.AddInt64(&next, 1)
				if calls > 0 {
					if n > calls {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				args.Seq = uint64(n)
				t0 := time.Now()
				err := c.call("Test.Echo", &args, &reply)
				elapsed := time.Since(t0)
				if err == nil && (reply.Seq != args.Seq || len(reply.Payload) != len(payload)) {
					err = errMismatch
				}
				if err != nil {
					w.failed++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.ok++
				w.lat = append(w.lat, elapsed)
			}
		}(w, payloads[i])
	}
	wg.Wait()
	return workers, time.Since(start)
}

type result struct {
	Calls        int64   `json:"calls"`
	OK           int64   `json:"ok"`
	Failed       int64   `json:"failed"`
	Seconds      float64 `json:"seconds"`
	CallsPerSec  float64 `json:"callsPerSec"`
	P50Ms        float64 `json:"p50Ms"`
	P99Ms        float64 `json:"p99Ms"`
	CPUUsPerCall float64 `json:"cpuUsPerCall"`
	Error        string  `json:"error,omitempty"`
}

// cpuUs is the process's user plus system CPU time so far, in µs (bench/rpc-client.ts reports the same).
func cpuUs() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

func summarize(workers []*worker, elapsed time.Duration, cpu float64) *result {
	r := &result{Seconds: round(elapsed.Seconds(), 3)}
	var all []time.Duration
	for _, w := range workers {
		r.OK += w.ok
		r.Failed += w.failed
		if w.firstErr != nil && r.Error == "" {
			r.Error = w.firstErr.Error()
		}
		all = append(all, w.lat...)
	}
	r.Calls = r.OK + r.Failed
	if r.Calls > 0 {
		r.CPUUsPerCall = round(cpu/float64(r.Calls), 2)
	}
	if s := elapsed.Seconds(); s > 0 {
		r.CallsPerSec = round(float64(r.Calls)/s, 1)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.P50Ms = percentileMs(all, 0.50)
	r.P99Ms = percentileMs(all, 0.99)
	return r
}

// percentileMs is the nearest-rank percentile, as bench/rpc-client.ts computes it.
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return round(float64(sorted[i])/1e6, 3)
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

func fatal(err error) {
	b, _ := json.Marshal(map[string]interface{}{"calls": 0, "ok": 0, "failed": 0, "fatal": err.Error()})
	fmt.Println(string(b))
	fmt.Fprintln(os.Stderr, "client:", err)
	os.Exit(1)
}

func main() {
	o := &options{}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8300", "server host:port")
	flag.StringVar(&o.protocol, "protocol", "consul", "preamble dialect: consul | nomad")
	flag.Int64Var(&o.calls, "calls", 0, "total measured calls (default 10000 unless -duration)")
	flag.DurationVar(&o.duration, "duration", 0, "measure for this long instead of -calls")
	flag.DurationVar(&o.warmup, "warmup", 0, "call for this long first, unmeasured")
	flag.IntVar(&o.concurrency, "concurrency", 1, "goroutines issuing calls")
	flag.IntVar(&o.size, "size", 32, "Test.Echo payload bytes")
	flag.IntVar(&o.maxStreams, "max-streams", 64, "idle stream clients kept (Consul's and RpcPool's default: 64)")
	flag.Parse()
	if o.protocol != "consul" && o.protocol != "nomad" {
		fatal(fmt.Errorf("unknown -protocol %q (consul | nomad)", o.protocol))
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	if o.calls <= 0 && o.duration <= 0 {
		o.calls = 10000
	}

	c, err := dial(o.addr, o.protocol, o.maxStreams)
	if err != nil {
		fatal(err)
	}
	// One ping first, so a server that accepts TCP but does not speak yamux fails here, once.
	var empty struct{}
	if err := c.call("Status.Ping", &empty, &empty); err != nil {
		fatal(err)
	}

	if *streamMode {
		runStream(c, o) // streaming.go
		return
	}

	// One random payload per caller, as the TypeScript contender does.
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	payloads := make([][]byte, o.concurrency)
	for i := range payloads {
		payloads[i] = make([]byte, o.size)
		rng.Read(payloads[i])
	}

	if o.warmup > 0 {
		phase(c, o, payloads, 0, time.Now().Add(o.warmup))
	}
	var workers []*worker
	var elapsed time.Duration
	cpu0 := cpuUs()
	if o.duration > 0 {
		workers, elapsed = phase(c, o, payloads, 0, time.Now().Add(o.duration))
	} else {
		workers, elapsed = phase(c, o, payloads, o.calls, time.Time{})
	}
	b, _ := json.Marshal(summarize(workers, elapsed, cpuUs()-cpu0))
	fmt.Println(string(b))
	c.session.Close()
}

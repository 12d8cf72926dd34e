// Command client is the Go reference client for the interop suite and the benchmarks, written
// the way Consul's agent/pool/pool.go uses the HashiCorp libraries: one TCP connection and one
// yamux session per process (yamux.Client with DefaultConfig), msgpack-rpc stream clients kept
// on a free list and reused for sequential calls, a broken stream discarded, a dead session
// replaced by a fresh dial on the next call.
//
// Build (GOPATH mode, Debian's /usr/share/gocode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../bin/client .
//
// Load mode prints ONE JSON line (see result) and exits 1 if any call failed.
// Single-call mode (-args '{json}') prints {"method","ok","remote","error","reply","ms"}.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"math/rand"
	"net"
	"net/rpc"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

const (
	consulRPCTLS         byte = 0x03
	consulRPCMultiplexV2 byte = 0x04

	nomadRPCNomad       byte = 0x01
	nomadRPCTLS         byte = 0x04
	nomadRPCMultiplexV2 byte = 0x06
)

const dialTimeout = 10 * time.Second // Consul/Nomad pool default

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

type SleepArgs struct{ Millis int64 }
type FailArgs struct{ Message string }

// ---------------------------------------------------------------------------------------------
// Options

type options struct {
	addr          string
	protocol      string
	useTLS        bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	calls         int64
	duration      time.Duration
	concurrency   int
	size          int
	method        string
	args          string
	fault         string
	timeout       time.Duration
}

func (o *options) tlsByte() byte {
	if o.protocol == "nomad" {
		return nomadRPCTLS
	}
	return consulRPCTLS
}

func (o *options) muxByte() byte {
	if o.protocol == "nomad" {
		return nomadRPCMultiplexV2
	}
	return consulRPCMultiplexV2
}

// ---------------------------------------------------------------------------------------------
// frameConn tracks yamux frame boundaries in the outgoing byte stream so a raw RST frame can be
// injected between two whole frames: the Debian yamux (2019) has no API to reset a stream.

const yamuxHeaderSize = 12

type frameConn struct {
	net.Conn
	mu       sync.Mutex
	hdr      [yamuxHeaderSize]byte
	hdrN     int
	bodyLeft uint32
	pending  [][]byte
}

func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.track(p[:n])
	if err == nil {
		err = c.flushPendingLocked()
	}
	return n, err
}

func (c *frameConn) track(b []byte) {
	for len(b) > 0 {
		if c.bodyLeft > 0 {
			k := uint32(len(b))
			if k > c.bodyLeft {
				k = c.bodyLeft
			}
			c.bodyLeft -= k
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.hdrN:], b)
		c.hdrN += k
		b = b[k:]
		if c.hdrN == yamuxHeaderSize {
			c.hdrN = 0
			if c.hdr[1] == 0 {
				c.bodyLeft = binary.BigEndian.Uint32(c.hdr[8:12])
			}
		}
	}
}

func (c *frameConn) flushPendingLocked() error {
	for len(c.pending) > 0 && c.hdrN == 0 && c.bodyLeft == 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		if _, err := c.Conn.Write(f); err != nil {
			return err
		}
	}
	return nil
}

func (c *frameConn) inject(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, frame)
	return c.flushPendingLocked()
}

func rstFrame(id uint32) []byte {
	return []byte{0, 1, 0, 8, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id), 0, 0, 0, 0}
}

// ---------------------------------------------------------------------------------------------
// Pool: one session, free list of stream clients (agent/pool/pool.go Conn.getClient/returnClient)

type session struct {
	mux    *yamux.Session
	frames *frameConn
}

type streamClient struct {
	sess   *session
	stream *yamux.Stream
	codec  *msgpackrpc.MsgpackCodec
}

type pool struct {
	opts      *options
	tlsConfig *tls.Config

	mu       sync.Mutex
	current  *session
	free     []*streamClient
	sessions int64
	streams  int64
}

func (p *pool) dial() (*session, error) {
	conn, err := net.DialTimeout("tcp", p.opts.addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetKeepAlive(true)
		tcp.SetNoDelay(true)
	}
	if p.tlsConfig != nil {
		if _, err := conn.Write([]byte{p.opts.tlsByte()}); err != nil {
			conn.Close()
			return nil, err
		}
		tlsConn := tls.Client(conn, p.tlsConfig)
		conn.SetDeadline(time.Now().Add(dialTimeout))
		if err := tlsConn.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		conn.SetDeadline(time.Time{})
		conn = tlsConn
	}
	if _, err := conn.Write([]byte{p.opts.muxByte()}); err != nil {
		conn.Close()
		return nil, err
	}
	frames := &frameConn{Conn: conn}
	conf := yamux.DefaultConfig()
	conf.LogOutput = os.Stderr
	mux, err := yamux.Client(frames, conf)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &session{mux: mux, frames: frames}, nil
}

func (p *pool) session() (*session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != nil && !p.current.mux.IsClosed() {
		return p.current, nil
	}
	s, err := p.dial()
	if err != nil {
		return nil, err
	}
	p.current = s
	p.free = p.free[:0]
	p.sessions++
	return s, nil
}

// open always creates a new stream (and writes Nomad's per-stream RPC byte).
func (p *pool) open() (*streamClient, error) {
	s, err := p.session()
	if err != nil {
		return nil, err
	}
	stream, err := s.mux.OpenStream()
	if err != nil {
		return nil, err
	}
	atomic.AddInt64(&p.streams, 1)
	if p.opts.protocol == "nomad" {
		if _, err := stream.Write([]byte{nomadRPCNomad}); err != nil {
			stream.Close()
			return nil, err
		}
	}
	return &streamClient{
		sess:   s,
		stream: stream,
		codec:  msgpackrpc.NewCodecFromHandle(true, true, stream, msgpackHandle),
	}, nil
}

func (p *pool) get() (*streamClient, error) {
	p.mu.Lock()
	for n := len(p.free); n > 0; n = len(p.free) {
		sc := p.free[n-1]
		p.free = p.free[:n-1]
		if !sc.sess.mux.IsClosed() {
			p.mu.Unlock()
			return sc, nil
		}
	}
	p.mu.Unlock()
	return p.open()
}

func (p *pool) put(sc *streamClient) {
	p.mu.Lock()
	if sc.sess == p.current && !sc.sess.mux.IsClosed() {
		p.free = append(p.free, sc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	sc.codec.Close()
}

// call is Consul's ConnPool.rpc: take a stream client, CallWithCodec, return it on success,
// close it on any error.
func (p *pool) call(method string, args, reply interface{}) error {
	sc, err := p.get()
	if err != nil {
		return err
	}
	if p.opts.timeout > 0 {
		sc.stream.SetReadDeadline(time.Now().Add(p.opts.timeout))
	}
	if err := msgpackrpc.CallWithCodec(sc.codec, method, args, reply); err != nil {
		sc.codec.Close()
		return err
	}
	p.put(sc)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Load mode

type result struct {
	Method      string         `json:"method"`
	Protocol    string         `json:"protocol"`
	TLS         bool           `json:"tls"`
	Fault       string         `json:"fault,omitempty"`
	Concurrency int            `json:"concurrency"`
	Size        int            `json:"size"`
	Calls       int64          `json:"calls"`
	OK          int64          `json:"ok"`
	Failed      int64          `json:"failed"`
	Errors      map[string]int `json:"errors"`
	Seconds     float64        `json:"seconds"`
	CallsPerSec float64        `json:"callsPerSec"`
	MBPerSec    float64        `json:"mbPerSec"`
	P50Ms       float64        `json:"p50Ms"`
	P90Ms       float64        `json:"p90Ms"`
	P99Ms       float64        `json:"p99Ms"`
	MaxMs       float64        `json:"maxMs"`
	Sessions    int64          `json:"sessions"`
	Streams     int64          `json:"streams"`
}

type worker struct {
	lat    []time.Duration
	ok     int64
	failed int64
	bytes  int64
	errors map[string]int
}

func (w *worker) fail(err error) {
	w.failed++
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	w.errors[msg]++
}

var errMismatch = errors.New("echo reply does not match request")

func runLoad(p *pool, o *options) (*result, error) {
	// Dial up front so a refused connection is one clear error, not N failed calls.
	if _, err := p.session(); err != nil {
		return nil, err
	}
	if o.fault == "goaway" {
		// Client -> server GoAway only forbids the server from opening streams to us; the
		// server must keep accepting ours.
		if err := p.current.mux.GoAway(); err != nil {
			return nil, err
		}
	}

	workers := make([]*worker, o.concurrency)
	var next int64
	deadline := time.Time{}
	if o.duration > 0 {
		deadline = time.Now().Add(o.duration)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{errors: map[string]int{}}
		if o.calls > 0 {
			w.lat = make([]time.Duration, 0, o.calls/int64(o.concurrency)+1)
		} else {
			w.lat = make([]time.Duration, 0, 1024)
		}
		workers[i] = w
		wg.Add(1)
		go func(w *worker, id int) {
			defer wg.Done()
			runWorker(p, o, w, id, &next, deadline)
		}(w, i)
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &result{
		Method: o.method, Protocol: o.protocol, TLS: p.tlsConfig != nil, Fault: o.fault,
		Concurrency: o.concurrency, Size: o.size, Errors: map[string]int{},
		Seconds:  elapsed.Seconds(),
		Sessions: p.sessions, Streams: atomic.LoadInt64(&p.streams),
	}
	var all []time.Duration
	var totalBytes int64
	for _, w := range workers {
		res.OK += w.ok
		res.Failed += w.failed
		totalBytes += w.bytes
		for k, v := range w.errors {
			res.Errors[k] += v
		}
		all = append(all, w.lat...)
	}
	res.Calls = res.OK + res.Failed
	if res.Seconds > 0 {
		res.CallsPerSec = round(float64(res.Calls)/res.Seconds, 1)
		res.MBPerSec = round(float64(totalBytes)/1e6/res.Seconds, 3)
	}
	res.Seconds = round(res.Seconds, 4)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.P50Ms = percentileMs(all, 0.50)
	res.P90Ms = percentileMs(all, 0.90)
	res.P99Ms = percentileMs(all, 0.99)
	if len(all) > 0 {
		res.MaxMs = round(float64(all[len(all)-1])/1e6, 3)
	}
	return res, nil
}

func runWorker(p *pool, o *options, w *worker, id int, next *int64, deadline time.Time) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(id)))
	payload := make([]byte, o.size)
	rng.Read(payload)
	args := EchoArgs{Payload: payload, Note: "go-client"}
	var reply EchoReply
	var empty struct{}
	var emptyReply struct{}
	var anyReply interface{}
	emptyArgs := map[string]interface{}{}
	timed := !deadline.IsZero()

	for {
		var seq uint64
		if timed {
			if !time.Now().Before(deadline) {
				return
			}
			seq = uint64(atomic.AddInt64(next, 1))
		} else {
			n := atomic.AddInt64(next, 1)
			if n > o.calls {
				return
			}
			seq = uint64(n)
		}

		t0 := time.Now()
		var err error
		switch o.method {
		case "Test.Echo":
			args.Seq = seq
			if len(payload) >= 8 {
				// Distinct bytes per call, so a reply crossed with another call's is caught.
				binary.BigEndian.PutUint64(payload, seq)
			}
			// An empty payload decodes as "leave the field alone", so stale bytes must go.
			if len(reply.Payload) != len(payload) {
				reply.Payload = nil
			}
			reply.Seq, reply.Note = 0, ""
			err = callWithFault(p, o, "Test.Echo", &args, &reply)
			if err == nil && (reply.Seq != seq || reply.Note != args.Note || !bytes.Equal(reply.Payload, payload)) {
				err = errMismatch
			}
			if err == nil {
				w.bytes += int64(2 * len(payload))
			}
		case "Status.Ping":
			err = callWithFault(p, o, o.method, &empty, &emptyReply)
		default:
			anyReply = nil
			err = callWithFault(p, o, o.method, emptyArgs, &anyReply)
		}
		if err != nil {
			w.fail(err)
			continue
		}
		w.lat = append(w.lat, time.Since(t0))
		w.ok++
	}
}

// callWithFault is pool.call plus the client-side stream faults:
//
//	fin        a fresh stream per call, FIN-closed after the reply (no reuse)
//	rst        a fresh stream per call, reset with RST after the reply (no FIN)
//	abandon-fin  before each call: a request on a fresh stream that is FIN-closed without
//	           reading the reply
//	abandon-rst  before each call: a request on a fresh stream that is reset at once
func callWithFault(p *pool, o *options, method string, args, reply interface{}) error {
	switch o.fault {
	case "", "goaway":
		return p.call(method, args, reply)
	case "fin", "rst":
		sc, err := p.open()
		if err != nil {
			return err
		}
		if o.timeout > 0 {
			sc.stream.SetReadDeadline(time.Now().Add(o.timeout))
		}
		err = msgpackrpc.CallWithCodec(sc.codec, method, args, reply)
		if o.fault == "rst" {
			if ierr := sc.sess.frames.inject(rstFrame(sc.stream.StreamID())); ierr != nil && err == nil {
				err = ierr
			}
		} else {
			sc.stream.Close()
		}
		return err
	case "abandon-fin", "abandon-rst":
		sc, err := p.open()
		if err != nil {
			return err
		}
		req := rpc.Request{ServiceMethod: "Test.Sleep", Seq: math.MaxUint32}
		if err := sc.codec.WriteRequest(&req, &SleepArgs{Millis: 5}); err != nil {
			return err
		}
		if o.fault == "abandon-rst" {
			if err := sc.sess.frames.inject(rstFrame(sc.stream.StreamID())); err != nil {
				return err
			}
		} else {
			sc.stream.Close()
		}
		return p.call(method, args, reply)
	}
	return fmt.Errorf("unknown fault %q", o.fault)
}

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

// ---------------------------------------------------------------------------------------------
// Single-call mode

type single struct {
	Method string      `json:"method"`
	OK     bool        `json:"ok"`
	Remote bool        `json:"remote"`
	Error  *string     `json:"error"`
	Reply  interface{} `json:"reply"`
	Ms     float64     `json:"ms"`
}

// typedArgs gives known methods their Go arg types so numbers go out as msgpack ints the
// way a Go caller would send them; unknown methods get a generic map.
func typedArgs(method string, raw string) (interface{}, error) {
	var target interface{}
	switch method {
	case "Test.Echo":
		target = &EchoArgs{}
	case "Test.Sleep":
		target = &SleepArgs{}
	case "Test.Fail":
		target = &FailArgs{}
	case "Status.Ping", "Status.Leader", "Test.Stats", "Test.GoAway", "Test.CloseSession",
		"Test.CloseStream", "Test.ResetStream":
		target = &struct{}{}
	default:
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		return fromJSON(v), nil
	}
	if err := json.Unmarshal([]byte(raw), target); err != nil {
		return nil, err
	}
	return target, nil
}

func fromJSON(v interface{}) interface{} {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]interface{}:
		for k, x := range t {
			t[k] = fromJSON(x)
		}
		return t
	case []interface{}:
		for i, x := range t {
			t[i] = fromJSON(x)
		}
		return t
	}
	return v
}

// toJSON turns go-msgpack's decoded interface{} (map[interface{}]interface{} for nested maps)
// into something encoding/json accepts.
func toJSON(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = toJSON(x)
		}
		return m
	case map[string]interface{}:
		for k, x := range t {
			t[k] = toJSON(x)
		}
		return t
	case []interface{}:
		for i, x := range t {
			t[i] = toJSON(x)
		}
		return t
	case []byte:
		return string(t)
	}
	return v
}

func runSingle(p *pool, o *options) (*single, error) {
	args, err := typedArgs(o.method, o.args)
	if err != nil {
		return nil, fmt.Errorf("-args: %v", err)
	}
	var reply interface{}
	t0 := time.Now()
	err = callWithFault(p, o, o.method, args, &reply)
	out := &single{Method: o.method, Ms: round(float64(time.Since(t0))/1e6, 3)}
	if err != nil {
		msg := err.Error()
		out.Error = &msg
		_, out.Remote = err.(rpc.ServerError)
		return out, nil
	}
	out.OK = true
	out.Reply = toJSON(reply)
	return out, nil
}

// ---------------------------------------------------------------------------------------------

func loadClientTLS(o *options) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if o.tlsServerName != "" {
		conf.ServerName = o.tlsServerName
	}
	if o.tlsCA != "" {
		pem, err := ioutil.ReadFile(o.tlsCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", o.tlsCA)
		}
		conf.RootCAs = pool
	}
	if o.tlsCert != "" || o.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

func fatal(o *options, code int, err error) {
	msg := err.Error()
	emit(map[string]interface{}{
		"method": o.method, "calls": 0, "ok": 0, "failed": 0,
		"errors": map[string]int{msg: 1}, "fatal": msg,
	})
	fmt.Fprintln(os.Stderr, "client:", msg)
	os.Exit(code)
}

func main() {
	o := &options{}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8300", "server host:port")
	flag.StringVar(&o.protocol, "protocol", "consul", "type-byte dialect: consul | nomad")
	flag.BoolVar(&o.useTLS, "tls", false, "use TLS (implied by -tls-ca / -tls-cert)")
	flag.StringVar(&o.tlsCA, "tls-ca", "", "CA bundle (PEM) to verify the server")
	flag.StringVar(&o.tlsCert, "tls-cert", "", "client certificate (PEM)")
	flag.StringVar(&o.tlsKey, "tls-key", "", "client private key (PEM)")
	flag.StringVar(&o.tlsServerName, "tls-server-name", "", "name to verify in the server certificate (default: host of -addr)")
	flag.Int64Var(&o.calls, "calls", 0, "total calls (default 1000 unless -duration)")
	flag.DurationVar(&o.duration, "duration", 0, "run for this long instead of -calls")
	flag.IntVar(&o.concurrency, "concurrency", 1, "goroutines issuing calls")
	flag.IntVar(&o.size, "size", 0, "Test.Echo payload bytes")
	flag.StringVar(&o.method, "method", "Test.Echo", "RPC method")
	flag.StringVar(&o.args, "args", "", "JSON args: make one call and print the reply")
	flag.StringVar(&o.fault, "fault", "", "client-side fault: goaway | fin | rst | abandon-fin | abandon-rst")
	flag.DurationVar(&o.timeout, "timeout", 0, "per-call read deadline (0 = none)")
	flag.Parse()

	if o.protocol != "consul" && o.protocol != "nomad" {
		fatal(o, 2, fmt.Errorf("unknown -protocol %q (consul | nomad)", o.protocol))
	}
	switch o.fault {
	case "", "goaway", "fin", "rst", "abandon-fin", "abandon-rst":
	default:
		fatal(o, 2, fmt.Errorf("unknown -fault %q", o.fault))
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	if o.calls <= 0 && o.duration <= 0 {
		o.calls = 1000
	}

	p := &pool{opts: o}
	if o.useTLS || o.tlsCA != "" || o.tlsCert != "" {
		conf, err := loadClientTLS(o)
		if err != nil {
			fatal(o, 2, fmt.Errorf("tls: %v", err))
		}
		p.tlsConfig = conf
	}

	if *streamMethod != "" {
		os.Exit(runStreaming(p, o)) // streaming.go
	}

	if o.args != "" {
		out, err := runSingle(p, o)
		if err != nil {
			fatal(o, 2, err)
		}
		emit(out)
		if !out.OK {
			os.Exit(1)
		}
		return
	}

	res, err := runLoad(p, o)
	if err != nil {
		fatal(o, 1, err)
	}
	emit(res)
	if res.Failed > 0 {
		os.Exit(1)
	}
}

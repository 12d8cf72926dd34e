// Command server is the Go reference peer for the interop suite: a Consul/Nomad-style RPC
// port built from the same HashiCorp libraries (yamux + net-rpc-msgpackrpc + go-msgpack)
// that Debian ships, so the TypeScript pool is tested against real Go behaviour rather than
// against our own reading of it.
//
// Build (GOPATH mode, Debian's /usr/share/gocode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../bin/server .
//
// The first line on stdout is the bound "host:port". The process exits on SIGINT/SIGTERM and
// when stdin reaches EOF, so a harness that dies without cleaning up does not leak servers.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/rpc"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

// Type bytes. Consul (agent/pool/conn.go) and Nomad (helper/pool/conn.go) number them differently.
const (
	consulRPCTLS         byte = 0x03
	consulRPCMultiplexV2 byte = 0x04

	nomadRPCNomad       byte = 0x01
	nomadRPCTLS         byte = 0x04
	nomadRPCStreaming   byte = 0x05
	nomadRPCMultiplexV2 byte = 0x06
)

// Same as Consul/Nomad's default rpc_handshake_timeout.
const handshakeTimeout = 5 * time.Second

// msgpackHandle mirrors Consul's structs.MsgpackHandle: raw decodes to string, WriteExt off,
// so strings and []byte both go out as fixstr/str16/str32 (never str8, never bin).
var msgpackHandle = &codec.MsgpackHandle{RawToString: true, WriteExt: false}

func init() {
	// Consul sets MapType so schemaless maps decode with string keys.
	msgpackHandle.MapType = reflect.TypeOf(map[string]interface{}(nil))
}

var (
	statConns   uint64 // TCP connections accepted
	statStreams uint64 // yamux streams accepted
	statServed  uint64 // RPC requests read (each call counts itself)
	statLive    int64  // yamux sessions currently alive
)

// ---------------------------------------------------------------------------------------------
// Service definitions (field names are the wire keys)

type Status struct{ leader string }

// Ping matches Consul's Status.Ping(args struct{}, reply *struct{}).
func (s *Status) Ping(args struct{}, reply *struct{}) error { return nil }

// Leader returns this server's own address, like a single-node cluster would.
func (s *Status) Leader(args struct{}, reply *string) error {
	*reply = s.leader
	return nil
}

type Test struct{}

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

type StatsReply struct {
	Conns   uint64
	Streams uint64
	Served  uint64
	Live    uint64
}

func (t *Test) Echo(args EchoArgs, reply *EchoReply) error {
	reply.Payload = args.Payload
	reply.Seq = args.Seq
	reply.Note = args.Note
	reply.Served = atomic.LoadUint64(&statServed)
	return nil
}

func (t *Test) Sleep(args SleepArgs, reply *struct{}) error {
	if args.Millis > 0 {
		time.Sleep(time.Duration(args.Millis) * time.Millisecond)
	}
	return nil
}

func (t *Test) Fail(args FailArgs, reply *struct{}) error {
	return errors.New(args.Message)
}

func (t *Test) Stats(args struct{}, reply *StatsReply) error {
	reply.Conns = atomic.LoadUint64(&statConns)
	reply.Streams = atomic.LoadUint64(&statStreams)
	reply.Served = atomic.LoadUint64(&statServed)
	live := atomic.LoadInt64(&statLive)
	if live < 0 {
		live = 0
	}
	reply.Live = uint64(live)
	return nil
}

// The fault helpers only reply; faultCodec performs the fault once the reply is on the wire,
// because net/rpc gives a method no handle on the stream or session it arrived on.
func (t *Test) GoAway(args struct{}, reply *struct{}) error       { return nil }
func (t *Test) CloseSession(args struct{}, reply *struct{}) error { return nil }
func (t *Test) CloseStream(args struct{}, reply *struct{}) error  { return nil }
func (t *Test) ResetStream(args struct{}, reply *struct{}) error  { return nil }

// ---------------------------------------------------------------------------------------------
// Per-stream codec wrapper: counts calls and runs the fault helpers against the caller's own
// stream/session after the reply has been flushed.

type faultCodec struct {
	inner   *msgpackrpc.MsgpackCodec
	session *yamux.Session
	stream  *yamux.Stream
	frames  *frameConn
	// done makes the next ReadRequestHeader return EOF so the serve loop stops after a fault
	// that leaves the stream unusable.
	done bool
	// reset records that an RST was injected, so the stream must not also be FIN-closed.
	reset bool
}

func (c *faultCodec) ReadRequestHeader(r *rpc.Request) error {
	if c.done {
		return io.EOF
	}
	if err := c.inner.ReadRequestHeader(r); err != nil {
		return err
	}
	routeNoLeader(r) // cluster.go
	atomic.AddUint64(&statServed, 1)
	return nil
}

func (c *faultCodec) ReadRequestBody(body interface{}) error { return c.inner.ReadRequestBody(body) }

func (c *faultCodec) WriteResponse(r *rpc.Response, body interface{}) error {
	err := c.inner.WriteResponse(r, body)
	if err != nil || r.Error != "" {
		return err
	}
	switch r.ServiceMethod {
	case "Test.GoAway":
		if gerr := c.session.GoAway(); gerr != nil {
			log.Printf("[WARN] server: GoAway: %v", gerr)
		}
	case "Test.CloseSession":
		c.done = true
		// The reply is already written: stream.Write returns only after yamux's send loop has
		// handed the frame to the socket.
		c.session.Close()
	case "Test.CloseStream":
		c.done = true
		c.stream.Close()
	case "Test.ResetStream":
		c.done = true
		c.reset = true
		c.frames.inject(rstFrame(c.stream.StreamID()))
	}
	return nil
}

func (c *faultCodec) Close() error { return c.inner.Close() }

// ---------------------------------------------------------------------------------------------
// frameConn sits between yamux and the socket and tracks yamux frame boundaries in the
// outgoing byte stream. The Debian yamux (2019) has no API to reset a stream, so RST frames
// are injected here, between two whole frames written by yamux's single send goroutine.

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
			if c.hdr[1] == 0 { // Data: length counts payload bytes that follow
				c.bodyLeft = uint32(c.hdr[8])<<24 | uint32(c.hdr[9])<<16 | uint32(c.hdr[10])<<8 | uint32(c.hdr[11])
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

func (c *frameConn) inject(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, frame)
	if err := c.flushPendingLocked(); err != nil {
		log.Printf("[WARN] server: inject frame: %v", err)
	}
}

// rstFrame is a WindowUpdate with the RST flag (0x8) and delta 0, as yamux itself sends when
// it refuses a stream.
func rstFrame(id uint32) []byte {
	return []byte{0, 1, 0, 8, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id), 0, 0, 0, 0}
}

// ---------------------------------------------------------------------------------------------
// Connection handling (agent/consul/rpc.go handleConn + handleMultiplexV2, nomad/rpc.go)

type server struct {
	protocol  string
	tlsConfig *tls.Config
	rpc       *rpc.Server
}

func (s *server) tlsByte() byte {
	if s.protocol == "nomad" {
		return nomadRPCTLS
	}
	return consulRPCTLS
}

func (s *server) muxByte() byte {
	if s.protocol == "nomad" {
		return nomadRPCMultiplexV2
	}
	return consulRPCMultiplexV2
}

func readByte(conn net.Conn) (byte, error) {
	var buf [1]byte
	if _, err := io.ReadFull(conn, buf[:]); err != nil {
		return 0, err
	}
	return buf[0], nil
}

func (s *server) handleConn(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
		tcp.SetKeepAlive(true)
	}
	conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	first, err := readByte(conn)
	if err != nil {
		if err != io.EOF {
			log.Printf("[ERR] server: failed to read type byte from %v: %v", conn.RemoteAddr(), err)
		}
		conn.Close()
		return
	}

	if s.tlsConfig != nil {
		if first != s.tlsByte() {
			log.Printf("[WARN] server: non-TLS connection attempted with TLS required (type byte 0x%02x) from %v", first, conn.RemoteAddr())
			conn.Close()
			return
		}
		tlsConn := tls.Server(conn, s.tlsConfig)
		if err := tlsConn.Handshake(); err != nil {
			log.Printf("[ERR] server: TLS handshake with %v failed: %v", conn.RemoteAddr(), err)
			conn.Close()
			return
		}
		conn = tlsConn
		if first, err = readByte(conn); err != nil {
			log.Printf("[ERR] server: failed to read inner type byte from %v: %v", conn.RemoteAddr(), err)
			conn.Close()
			return
		}
		if first == s.tlsByte() {
			log.Printf("[ERR] server: TLS connection attempting to upgrade to TLS again from %v", conn.RemoteAddr())
			conn.Close()
			return
		}
	} else if first == s.tlsByte() {
		log.Printf("[WARN] server: TLS connection attempted, server not configured for TLS, from %v", conn.RemoteAddr())
		conn.Close()
		return
	}

	if first != s.muxByte() {
		log.Printf("[ERR] server: unsupported type byte 0x%02x from %v", first, conn.RemoteAddr())
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	s.handleMultiplexV2(conn)
}

func (s *server) handleMultiplexV2(conn net.Conn) {
	frames := &frameConn{Conn: conn}
	conf := yamux.DefaultConfig()
	conf.LogOutput = os.Stderr
	session, err := yamux.Server(frames, conf)
	if err != nil {
		log.Printf("[ERR] server: yamux: %v", err)
		conn.Close()
		return
	}
	atomic.AddInt64(&statLive, 1)
	defer atomic.AddInt64(&statLive, -1)
	defer session.Close()
	for {
		stream, err := session.AcceptStream()
		if err != nil {
			if session.IsClosed() {
				return
			}
			log.Printf("[ERR] server: accept stream: %v", err)
			return
		}
		atomic.AddUint64(&statStreams, 1)
		go s.handleStream(session, frames, stream)
	}
}

func (s *server) handleStream(session *yamux.Session, frames *frameConn, stream *yamux.Stream) {
	if s.protocol == "nomad" {
		kind, err := readByte(stream)
		if err != nil {
			stream.Close()
			return
		}
		switch kind {
		case nomadRPCNomad:
		case nomadRPCStreaming:
			handleStreaming(stream) // streaming.go
			return
		default:
			// Nomad's handleMultiplexV2 abandons the whole session on an unknown stream byte.
			log.Printf("[ERR] server: multiplex stream with unknown type byte 0x%02x", kind)
			session.Close()
			return
		}
	}

	fc := &faultCodec{
		inner:   msgpackrpc.NewCodecFromHandle(true, true, stream, msgpackHandle),
		session: session,
		stream:  stream,
		frames:  frames,
	}
	for {
		if err := s.rpc.ServeRequest(fc); err != nil {
			// A peer resetting or closing its stream is routine, not worth a log line.
			if msg := err.Error(); err != io.EOF && !strings.Contains(msg, "closed") &&
				!strings.Contains(msg, yamux.ErrConnectionReset.Error()) {
				log.Printf("[ERR] server: RPC error: %v", err)
			}
			break
		}
	}
	if !fc.reset {
		stream.Close()
	}
}

// ---------------------------------------------------------------------------------------------

func loadTLS(certFile, keyFile, caFile string, verifyClient bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load key pair: %w", err)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.NoClientCert,
	}
	if caFile != "" {
		pem, err := ioutil.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", caFile)
		}
		conf.ClientCAs = pool
		if verifyClient {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			conf.ClientAuth = tls.VerifyClientCertIfGiven
		}
	} else if verifyClient {
		return nil, errors.New("-tls-verify-client needs -tls-ca")
	}
	return conf, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	protocol := flag.String("protocol", "consul", "type-byte dialect: consul | nomad")
	tlsCert := flag.String("tls-cert", "", "server certificate (PEM); enables TLS and refuses plaintext")
	tlsKey := flag.String("tls-key", "", "server private key (PEM)")
	tlsCA := flag.String("tls-ca", "", "CA bundle (PEM) used to verify client certificates")
	verifyClient := flag.Bool("tls-verify-client", false, "require a client certificate signed by -tls-ca")
	watchStdin := flag.Bool("exit-on-stdin-eof", true, "exit when stdin reaches EOF")
	flag.Parse()

	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	if *protocol != "consul" && *protocol != "nomad" {
		fmt.Fprintf(os.Stderr, "unknown -protocol %q (consul | nomad)\n", *protocol)
		os.Exit(2)
	}

	var tlsConfig *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		if *tlsCert == "" || *tlsKey == "" {
			fmt.Fprintln(os.Stderr, "-tls-cert and -tls-key go together")
			os.Exit(2)
		}
		var err error
		if tlsConfig, err = loadTLS(*tlsCert, *tlsKey, *tlsCA, *verifyClient); err != nil {
			fmt.Fprintf(os.Stderr, "tls: %v\n", err)
			os.Exit(2)
		}
	} else if *tlsCA != "" || *verifyClient {
		fmt.Fprintln(os.Stderr, "-tls-ca / -tls-verify-client need -tls-cert and -tls-key")
		os.Exit(2)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		os.Exit(1)
	}
	bound := ln.Addr().String()

	rpcServer := rpc.NewServer()
	if err := rpcServer.RegisterName("Status", &Status{leader: bound}); err != nil {
		log.Fatalf("register Status: %v", err)
	}
	if err := rpcServer.RegisterName("Test", &Test{}); err != nil {
		log.Fatalf("register Test: %v", err)
	}
	if err := registerCluster(rpcServer); err != nil { // cluster.go
		log.Fatalf("register Election: %v", err)
	}
	if err := rpcServer.RegisterName("Time", &TimeService{}); err != nil { // times.go
		log.Fatalf("register Time: %v", err)
	}
	srv := &server{protocol: *protocol, tlsConfig: tlsConfig, rpc: rpcServer}

	fmt.Fprintln(os.Stdout, bound)
	os.Stdout.Sync()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	if *watchStdin {
		go func() {
			io.Copy(ioutil.Discard, os.Stdin)
			os.Exit(0)
		}()
	}

	for {
		conn, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Fatalf("accept: %v", err)
		}
		atomic.AddUint64(&statConns, 1)
		go srv.handleConn(conn)
	}
}

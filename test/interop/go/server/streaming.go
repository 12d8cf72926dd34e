// Nomad's streaming RPC on the Go peer (nomad/rpc.go handleStreamingConn, nomad/structs
// streaming_rpc.go, client/structs StreamErrWrapper): a stream that opens with 0x05 carries a
// StreamingRpcHeader, the server's StreamingRpcAck, then handler-specific msgpack values. The
// handlers are written the way Nomad's are: an encoder and a decoder on the stream, a goroutine
// whose read notices the client closing its side, frames of StreamErrWrapper.
package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
)

type StreamingRpcHeader struct{ Method string }

type StreamingRpcAck struct{ Error string }

// RpcError is client/structs.RpcError: an error with an optional code.
type RpcError struct {
	Message string
	Code    *int64
}

// StreamErrWrapper is client/structs.StreamErrWrapper; the zero value is a heartbeat.
type StreamErrWrapper struct {
	Error   *RpcError
	Payload []byte
}

type streamingHandler func(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder)

var streamingHandlers = map[string]streamingHandler{
	"Test.Monitor":     monitorHandler,
	"Test.Follow":      followHandler,
	"Test.Exec":        execHandler,
	"Test.Fill":        fillHandler,
	"Test.StreamError": streamErrorHandler,
}

// handleStreaming serves one streaming RPC on a yamux stream whose first byte was 0x05.
func handleStreaming(conn io.ReadWriteCloser) {
	defer conn.Close()
	dec := codec.NewDecoder(conn, msgpackHandle)
	var header StreamingRpcHeader
	if err := dec.Decode(&header); err != nil {
		return
	}
	handler, ok := streamingHandlers[header.Method]
	ack := StreamingRpcAck{}
	if !ok {
		ack.Error = fmt.Sprintf("Unknown rpc method: %q", header.Method)
	}
	enc := codec.NewEncoder(conn, msgpackHandle)
	if err := enc.Encode(ack); err != nil || !ok {
		return
	}
	handler(conn, dec, enc)
}

// watchClose reads the client's side until it ends, as Nomad's handlers do to notice a cancel.
// Values that arrive are discarded.
func watchClose(dec *codec.Decoder) <-chan struct{} {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			var discard interface{}
			if err := dec.Decode(&discard); err != nil {
				return
			}
		}
	}()
	return closed
}

type MonitorArgs struct {
	Count          int
	Size           int
	HeartbeatEvery int
}

// monitorHandler sends Count numbered lines (padded to Size bytes), a heartbeat after every
// HeartbeatEvery of them, then ends the stream: a finite Agent.Monitor.
func monitorHandler(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder) {
	var args MonitorArgs
	if err := dec.Decode(&args); err != nil {
		return
	}
	for i := 0; i < args.Count; i++ {
		line := []byte(fmt.Sprintf("line %d", i))
		if len(line) < args.Size {
			line = append(line, bytes.Repeat([]byte{'.'}, args.Size-len(line))...)
		}
		if err := enc.Encode(StreamErrWrapper{Payload: line}); err != nil {
			return
		}
		if args.HeartbeatEvery > 0 && (i+1)%args.HeartbeatEvery == 0 {
			if err := enc.Encode(StreamErrWrapper{}); err != nil {
				return
			}
		}
	}
}

type FollowArgs struct {
	Id             string
	IntervalMillis int
}

// follows records, per Id, when a follow stream saw its client close.
var follows = struct {
	sync.Mutex
	closed map[string]chan struct{}
}{closed: map[string]chan struct{}{}}

func followClosed(id string) chan struct{} {
	follows.Lock()
	defer follows.Unlock()
	ch, ok := follows.closed[id]
	if !ok {
		ch = make(chan struct{})
		follows.closed[id] = ch
	}
	return ch
}

// followHandler sends a tick every IntervalMillis (default 10) until the client closes its
// side, then records the close under Id: an endless FileSystem.Logs with Follow.
func followHandler(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder) {
	var args FollowArgs
	if err := dec.Decode(&args); err != nil {
		return
	}
	interval := time.Duration(args.IntervalMillis) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Millisecond
	}
	closed := watchClose(dec)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for n := 0; ; n++ {
		select {
		case <-closed:
			close(followClosed(args.Id))
			return
		case <-ticker.C:
			if err := enc.Encode(StreamErrWrapper{Payload: []byte(fmt.Sprintf("tick %d", n))}); err != nil {
				<-closed
				close(followClosed(args.Id))
				return
			}
		}
	}
}

type FollowClosedArgs struct {
	Id         string
	WaitMillis int
}

type FollowClosedReply struct{ Closed bool }

// FollowClosed answers whether the follow stream Id saw its client close, waiting up to
// WaitMillis for it.
func (t *Test) FollowClosed(args FollowClosedArgs, reply *FollowClosedReply) error {
	select {
	case <-followClosed(args.Id):
		reply.Closed = true
	case <-time.After(time.Duration(args.WaitMillis) * time.Millisecond):
	}
	return nil
}

type ExecInput struct {
	Data  []byte
	Close bool
}

// execHandler echoes each input's Data as a payload until an input says Close: a two-way
// Allocations.Exec.
func execHandler(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder) {
	for {
		var in ExecInput
		if err := dec.Decode(&in); err != nil {
			return
		}
		if in.Close {
			return
		}
		if err := enc.Encode(StreamErrWrapper{Payload: in.Data}); err != nil {
			return
		}
	}
}

type FillArgs struct {
	Bytes     int64
	FrameSize int
	Text      bool
}

// fillHandler sends Bytes bytes in payloads of FrameSize (default 64 KiB), then ends: the
// throughput stream of the interop suite and the benchmark. Text payloads are ASCII, others
// bytes that are not UTF-8.
func fillHandler(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder) {
	var args FillArgs
	if err := dec.Decode(&args); err != nil {
		return
	}
	size := args.FrameSize
	if size <= 0 {
		size = 64 * 1024
	}
	frame := make([]byte, size)
	for i := range frame {
		if args.Text {
			frame[i] = byte('a' + i%26)
		} else {
			frame[i] = byte(0x80 | i%64)
		}
	}
	closed := watchClose(dec)
	for sent := int64(0); sent < args.Bytes; {
		n := int64(size)
		if args.Bytes-sent < n {
			n = args.Bytes - sent
		}
		if err := enc.Encode(StreamErrWrapper{Payload: frame[:n]}); err != nil {
			return
		}
		sent += n
		select {
		case <-closed:
			return
		default:
		}
	}
}

type StreamErrorArgs struct {
	Message string
	Code    int64
	Before  int
}

// streamErrorHandler sends Before payloads, then an error frame with Message and Code.
func streamErrorHandler(conn io.ReadWriteCloser, dec *codec.Decoder, enc *codec.Encoder) {
	var args StreamErrorArgs
	if err := dec.Decode(&args); err != nil {
		return
	}
	for i := 0; i < args.Before; i++ {
		if err := enc.Encode(StreamErrWrapper{Payload: []byte(fmt.Sprintf("before %d", i))}); err != nil {
			return
		}
	}
	code := args.Code
	enc.Encode(StreamErrWrapper{Error: &RpcError{Message: args.Message, Code: &code}})
}

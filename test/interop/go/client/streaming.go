// Streaming-RPC mode (-stream METHOD): Nomad's client side of a streaming RPC, written the way
// helper/pool StreamingRPC and nomad/client_rpc.go streamingRpcImpl use the libraries: a fresh
// yamux stream of the pooled session, the 0x05 byte, StreamingRpcHeader, the ack, then the
// request and any further values (-send), and StreamErrWrapper frames read until EOF or an
// error frame.
//
// Prints ONE JSON line (streamResult); exits 1 on a remote error, 2 on a connection error.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
)

const nomadRPCStreaming byte = 0x05

var (
	streamMethod    = flag.String("stream", "", "streaming RPC: call METHOD with -args as the request and print its frames")
	streamSend      = flag.String("send", "", "streaming RPC: a JSON array of values to send after the request")
	streamMaxFrames = flag.Int("max-frames", 0, "streaming RPC: close the stream after this many payload frames (0 = until EOF)")
	streamDiscard   = flag.Bool("discard", false, "streaming RPC: count payload bytes instead of printing them")
)

type StreamingRpcHeader struct{ Method string }
type StreamingRpcAck struct{ Error string }

type RpcError struct {
	Message string
	Code    *int64
}

type StreamErrWrapper struct {
	Error   *RpcError
	Payload []byte
}

type streamResult struct {
	Method     string   `json:"method"`
	OK         bool     `json:"ok"`
	Remote     bool     `json:"remote"`
	Error      *string  `json:"error"`
	Code       *int64   `json:"code"`
	Frames     []string `json:"frames"`
	Heartbeats int      `json:"heartbeats"`
	Bytes      int64    `json:"bytes"`
	Seconds    float64  `json:"seconds"`
	MBPerSec   float64  `json:"mbPerSec"`
}

// openStreaming is helper/pool StreamingRPC: a fresh stream on the session, the type byte first.
func (p *pool) openStreaming() (io.ReadWriteCloser, error) {
	s, err := p.session()
	if err != nil {
		return nil, err
	}
	stream, err := s.mux.OpenStream()
	if err != nil {
		return nil, err
	}
	if _, err := stream.Write([]byte{nomadRPCStreaming}); err != nil {
		stream.Close()
		return nil, err
	}
	return stream, nil
}

var errRemote = errors.New("remote")

func runStreaming(p *pool, o *options) int {
	out := &streamResult{Method: *streamMethod, Frames: []string{}}
	code := 0
	if err := stream(p, o, out); err != nil {
		msg := err.Error()
		if errors.Is(err, errRemote) {
			msg = strings.TrimPrefix(msg, errRemote.Error()+": ")
			out.Remote = true
			code = 1
		} else {
			code = 2
		}
		out.Error = &msg
	} else {
		out.OK = true
	}
	if out.Seconds > 0 {
		out.MBPerSec = round(float64(out.Bytes)/1e6/out.Seconds, 3)
	}
	out.Seconds = round(out.Seconds, 4)
	emit(out)
	return code
}

func stream(p *pool, o *options, out *streamResult) error {
	conn, err := p.openStreaming()
	if err != nil {
		return err
	}
	defer conn.Close()
	enc := codec.NewEncoder(conn, msgpackHandle)
	dec := codec.NewDecoder(bufio.NewReaderSize(conn, 64*1024), msgpackHandle)
	if err := enc.Encode(StreamingRpcHeader{Method: *streamMethod}); err != nil {
		return err
	}
	var ack StreamingRpcAck
	if err := dec.Decode(&ack); err != nil {
		return err
	}
	if ack.Error != "" {
		return fmt.Errorf("%w: %s", errRemote, ack.Error)
	}
	values, err := streamValues(o.args, *streamSend)
	if err != nil {
		return err
	}
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	start := time.Now()
	defer func() { out.Seconds = time.Since(start).Seconds() }()
	for payloads := 0; *streamMaxFrames == 0 || payloads < *streamMaxFrames; {
		var frame StreamErrWrapper
		if err := dec.Decode(&frame); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if frame.Error != nil {
			out.Code = frame.Error.Code
			return fmt.Errorf("%w: %s", errRemote, frame.Error.Message)
		}
		if frame.Payload == nil {
			out.Heartbeats++
			continue
		}
		payloads++
		out.Bytes += int64(len(frame.Payload))
		if !*streamDiscard {
			out.Frames = append(out.Frames, string(frame.Payload))
		}
	}
	return nil
}

// streamValues: the request (-args, when given) and then each element of -send.
func streamValues(args, send string) ([]interface{}, error) {
	var values []interface{}
	if args != "" {
		v, err := decodeJSON(args)
		if err != nil {
			return nil, fmt.Errorf("-args: %v", err)
		}
		values = append(values, v)
	}
	if send != "" {
		v, err := decodeJSON(send)
		if err != nil {
			return nil, fmt.Errorf("-send: %v", err)
		}
		list, ok := v.([]interface{})
		if !ok {
			return nil, errors.New("-send: expected a JSON array")
		}
		values = append(values, list...)
	}
	return values, nil
}

func decodeJSON(raw string) (interface{}, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return fromJSON(v), nil
}

// Streaming mode (-stream): the Go contender of the bench's streaming row. Nomad's client side of
// a streaming RPC as helper/pool StreamingRPC and nomad/client_rpc.go streamingRpcImpl write it: a
// fresh stream of the session, the 0x05 byte, StreamingRpcHeader, the ack, the request, then
// StreamErrWrapper frames decoded from a buffered reader. The stream is the Go server's endless
// Test.Fill; frames are read for -warmup, then counted for -duration, then the stream is closed.
//
// Prints one JSON line: {bytes, frames, seconds, mbPerSec, cpuMsPerMB} (mbPerSec in 10^6 bytes per
// second; cpuMsPerMB the process's CPU time, user and system, over the counted frames per 10^6 bytes).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
)

const nomadRPCStreaming byte = 0x05

var (
	streamMode      = flag.Bool("stream", false, "read the Go server's Test.Fill streaming RPC instead of calling Test.Echo (needs -protocol nomad)")
	streamFrameSize = flag.Int("frame-size", 64*1024, "-stream: payload bytes per frame")
	streamPayload   = flag.String("payload", "binary", "-stream: binary (not UTF-8) | text (ASCII, which the TypeScript contender decodes as a string first)")
)

type streamingRpcHeader struct{ Method string }
type streamingRpcAck struct{ Error string }
type rpcError struct {
	Message string
	Code    *int64
}
type streamErrWrapper struct {
	Error   *rpcError
	Payload []byte
}
type fillArgs struct {
	Bytes     int64
	FrameSize int
	Text      bool
}

type streamResult struct {
	Bytes    int64   `json:"bytes"`
	Frames   int64   `json:"frames"`
	Seconds  float64 `json:"seconds"`
	MBPerSec float64 `json:"mbPerSec"`
	CPUMsPB  float64 `json:"cpuMsPerMB"`
}

func runStream(c *conn, o *options) {
	if !c.nomad {
		fatal(errors.New("-stream needs -protocol nomad"))
	}
	if *streamPayload != "binary" && *streamPayload != "text" {
		fatal(fmt.Errorf("-payload: binary or text, got %q", *streamPayload))
	}
	stream, err := c.session.OpenStream()
	if err != nil {
		fatal(err)
	}
	if _, err := stream.Write([]byte{nomadRPCStreaming}); err != nil {
		fatal(err)
	}
	enc := codec.NewEncoder(stream, msgpackHandle)
	dec := codec.NewDecoder(bufio.NewReaderSize(stream, 64*1024), msgpackHandle)
	if err := enc.Encode(streamingRpcHeader{Method: "Test.Fill"}); err != nil {
		fatal(err)
	}
	var ack streamingRpcAck
	if err := dec.Decode(&ack); err != nil {
		fatal(err)
	}
	if ack.Error != "" {
		fatal(errors.New(ack.Error))
	}
	// Endless: 2^60 bytes.
	if err := enc.Encode(fillArgs{Bytes: 1 << 60, FrameSize: *streamFrameSize, Text: *streamPayload == "text"}); err != nil {
		fatal(err)
	}
	read := func(until time.Time) (bytes, frames int64) {
		var frame streamErrWrapper
		for time.Now().Before(until) {
			frame.Payload = frame.Payload[:0]
			if err := dec.Decode(&frame); err != nil {
				fatal(err)
			}
			if frame.Error != nil {
				fatal(errors.New(frame.Error.Message))
			}
			bytes += int64(len(frame.Payload))
			frames++
		}
		return
	}
	if o.warmup > 0 {
		read(time.Now().Add(o.warmup))
	}
	duration := o.duration
	if duration <= 0 {
		duration = 2 * time.Second
	}
	start := time.Now()
	cpuStart := cpuUs()
	bytes, frames := read(start.Add(duration))
	elapsed := time.Since(start).Seconds()
	cpu := (cpuUs() - cpuStart) / 1e3
	stream.Close()
	b, _ := json.Marshal(streamResult{
		Bytes:    bytes,
		Frames:   frames,
		Seconds:  round(elapsed, 3),
		MBPerSec: round(float64(bytes)/1e6/elapsed, 1),
		CPUMsPB:  round(cpu/(float64(bytes)/1e6), 2),
	})
	fmt.Println(string(b))
	c.session.Close()
}

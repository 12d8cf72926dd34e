// Command vectors prints msgpack encodings made by go-msgpack with a Consul-like handle (RawToString true,
// MapType map[string]interface{}, WriteExt false), one "name hex" line each. Codec.test.ts compares them with
// the TypeScript encoder. Build (no modules, Debian's GOPATH):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vectors ./test/msgpackrpc/go
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"net/rpc"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
)

type buffer struct{ bytes.Buffer }

func (*buffer) Close() error { return nil }

var handle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{RawToString: true}
	h.MapType = reflect.TypeOf(map[string]interface{}(nil))
	return h
}()

func emit(name string, b []byte) { fmt.Printf("%s %s\n", name, hex.EncodeToString(b)) }

func encode(name string, v interface{}) {
	var out []byte
	if err := codec.NewEncoderBytes(&out, handle).Encode(v); err != nil {
		panic(err)
	}
	emit(name, out)
}

func request(name string, r *rpc.Request, body interface{}) {
	var b buffer
	if err := msgpackrpc.NewCodecFromHandle(true, true, &b, handle).WriteRequest(r, body); err != nil {
		panic(err)
	}
	emit(name, b.Bytes())
}

func response(name string, r *rpc.Response, body interface{}) {
	var b buffer
	if err := msgpackrpc.NewCodecFromHandle(true, true, &b, handle).WriteResponse(r, body); err != nil {
		panic(err)
	}
	emit(name, b.Bytes())
}

type Strings struct {
	S0, S31, S32, S255, S256, S65535, S65536 string
}

type Bytes struct {
	B, Empty, Nil []byte
}

type Inner struct {
	Name string
	Port int
}

type Mixed struct {
	Zeta    bool
	Alpha   string `codec:"alpha"`
	Node    *Inner
	Nil     *Inner
	List    []Inner
	NilList []string
	Meta    map[string]string
	Empty   struct{}
	Opt     string `codec:",omitempty"`
	When    time.Time
	Zero    time.Time
	Dur     time.Duration
	Iface   interface{}
	Unicode string
}

type Collation struct {
	Private string `codec:"\ue000"`
	Astral  string `codec:"😀"`
	Latin   string `codec:"é"`
	Plain   string `codec:"z"`
}

type QueryRequest struct {
	Datacenter    string
	AllowStale    bool
	MinQueryIndex uint64
	MaxQueryTime  time.Duration
	Token         string
}

func main() {
	request("ping_request", &rpc.Request{ServiceMethod: "Status.Ping", Seq: 1}, struct{}{})
	response("ping_response", &rpc.Response{ServiceMethod: "Status.Ping", Seq: 1}, struct{}{})
	response("error_response", &rpc.Response{ServiceMethod: "KVS.Get", Seq: 1 << 40, Error: "permission denied"}, struct{}{})
	request("query_request", &rpc.Request{ServiceMethod: "Catalog.ListNodes", Seq: math.MaxUint64},
		&QueryRequest{Datacenter: "dc1", AllowStale: true, MinQueryIndex: 123456789, MaxQueryTime: 5 * time.Second})

	encode("strings", &Strings{
		S0: "", S31: strings.Repeat("a", 31), S32: strings.Repeat("b", 32), S255: strings.Repeat("c", 255),
		S256: strings.Repeat("d", 256), S65535: strings.Repeat("e", 65535), S65536: strings.Repeat("f", 65536),
	})
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	encode("bytes", &Bytes{B: all, Empty: []byte{}, Nil: nil})
	encode("ints", []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 1<<53 - 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, math.MinInt64})
	encode("uints", []uint64{math.MaxUint64, 1 << 53, 1 << 63})
	encode("small_ints", []interface{}{int8(-5), int16(300), uint8(200), uint16(40000), int32(-70000), uint32(3000000000)})
	encode("floats", []float64{1.5, -0.25, 1e300, math.Inf(-1)})
	encode("mixed", &Mixed{
		Zeta:    false,
		Alpha:   "lower-case tag sorts after upper-case names",
		Node:    &Inner{Name: "node-1", Port: 8300},
		List:    []Inner{{Name: "a", Port: 1}, {Name: "b", Port: 65536}},
		Meta:    map[string]string{"env": "prod"},
		When:    time.Date(2024, 3, 1, 12, 30, 45, 123000000, time.UTC),
		Dur:     1500 * time.Millisecond,
		Iface:   []interface{}{"x", 1, nil, true, map[string]interface{}{"k": -1}},
		Unicode: "héllo ✓ 𝄞",
	})
	encode("collation", &Collation{Private: "e000", Astral: "1f600", Latin: "e9", Plain: "z"})
	encode("empty_struct", struct{}{})
}

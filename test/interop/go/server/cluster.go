package main

// What the RpcCluster interop suite needs from a server of a cluster:
//
//   - Status.Peers, as Consul's and Nomad's servers answer it (the raft peers' RPC addresses),
//     read from -peers-file on every call so the suite can change the cluster's membership
//     while the servers run; without the flag, or before the file exists, the server's own
//     address.
//   - an election switch: while -no-leader-file exists, every method but Status.Ping answers
//     "No cluster leader" (structs.ErrNoLeader's text), as a Consul server does between
//     leaders; Status.Ping still answers, so rebalancing keeps seeing the server alive.

import (
	"errors"
	"flag"
	"io/ioutil"
	"net/rpc"
	"os"
	"strings"
)

var (
	peersFile    = flag.String("peers-file", "", "Status.Peers answers the host:port entries (comma or newline separated) of this file")
	noLeaderFile = flag.String("no-leader-file", "", "while this file exists, every method but Status.Ping answers \"No cluster leader\"")
)

// errNoLeader has the text of Consul's and Nomad's structs.ErrNoLeader.
var errNoLeader = errors.New("No cluster leader")

// noLeaderMethod serves the calls routed away from their method during an election.
const noLeaderMethod = "Election.NoLeader"

// Election holds the one method calls are routed to while there is no leader.
type Election struct{}

// NoLeader takes any arguments (decoded and dropped) and fails as a leaderless server does.
func (e *Election) NoLeader(args interface{}, reply *struct{}) error { return errNoLeader }

// Peers answers the cluster's servers, as Consul's Status.Peers(args, reply *[]string) does.
func (s *Status) Peers(args struct{}, reply *[]string) error {
	*reply = []string{s.leader}
	if *peersFile == "" {
		return nil
	}
	data, err := ioutil.ReadFile(*peersFile)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	peers := []string{}
	for _, entry := range strings.FieldsFunc(string(data), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if entry = strings.TrimSpace(entry); entry != "" {
			peers = append(peers, entry)
		}
	}
	*reply = peers
	return nil
}

// routeNoLeader sends a request to Election.NoLeader while the no-leader file exists. It runs
// on the request header, before net/rpc looks the method up, because net/rpc has no hook
// between reading a request and calling its method.
func routeNoLeader(r *rpc.Request) {
	if *noLeaderFile == "" || r.ServiceMethod == "Status.Ping" {
		return
	}
	if _, err := os.Stat(*noLeaderFile); err == nil {
		r.ServiceMethod = noLeaderMethod
	}
}

func registerCluster(s *rpc.Server) error {
	return s.RegisterName("Election", &Election{})
}

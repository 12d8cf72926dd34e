package main

// Time.Echo exercises time.Time on the wire: go-msgpack writes a time.Time through MarshalBinary
// (15 bytes, or 16 for zones whose offset is not whole minutes) and reads one through
// UnmarshalBinary. The TypeScript GoTime codec is checked against both directions here.

import "time"

type TimeService struct{}

type TimesArgs struct {
	Times []time.Time
}

// TimeCase is one time as Go sees it: the time itself (MarshalBinary on the wire) and its parts.
type TimeCase struct {
	Name   string
	Time   time.Time
	Unix   int64
	Nanos  int64
	Offset int64
	UTC    bool
	Text   string
}

type TimesReply struct {
	// Echo has the times received, as UnmarshalBinary read them, in order.
	Echo []TimeCase
	// Made has times made in Go, one of each kind.
	Made []TimeCase
}

const nanoLayout = "2006-01-02T15:04:05.000000000Z07:00"

func timeCase(name string, t time.Time) TimeCase {
	_, offset := t.Zone()
	return TimeCase{
		Name:   name,
		Time:   t,
		Unix:   t.Unix(),
		Nanos:  int64(t.Nanosecond()),
		Offset: int64(offset),
		UTC:    t.Location() == time.UTC,
		Text:   t.Format(nanoLayout),
	}
}

func (s *TimeService) Echo(args TimesArgs, reply *TimesReply) error {
	for _, t := range args.Times {
		reply.Echo = append(reply.Echo, timeCase("", t))
	}
	instant := time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	reply.Made = []TimeCase{
		timeCase("utc", instant),
		timeCase("zoned", instant.In(time.FixedZone("IST", 5*3600+30*60))),
		timeCase("west", instant.In(time.FixedZone("PDT", -7*3600))),
		timeCase("zero-offset", instant.In(time.FixedZone("", 0))),
		timeCase("lmt", instant.In(time.FixedZone("LMT", 75))),
		timeCase("lmt-west", instant.In(time.FixedZone("LMT", -125))),
		timeCase("zero", time.Time{}),
		timeCase("before-1970", time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC)),
		timeCase("last", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)),
	}
	return nil
}

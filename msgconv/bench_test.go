package msgconv

import (
	"context"
	"encoding/json"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// The benchmarks measure wire to wire, against a floor of the codec work any bridge must do: decoding the
// protobuf and encoding the Matrix JSON (or decoding the Matrix JSON and encoding the protobuf). Lookups go
// through the in-memory resolver.

var (
	toMatrixBenchNames   = []string{"plain", "reply_mention", "formatted", "image", "edit", "reaction"}
	toWhatsAppBenchNames = []string{"plain", "html_mention_reply"}
)

func BenchmarkToMatrix(b *testing.B) {
	ctx := context.Background()
	msgs := benchMessages()
	for _, name := range toMatrixBenchNames {
		data, err := proto.Marshal(msgs[name])
		if err != nil {
			b.Fatal(err)
		}
		r, info := newWorld(), groupInfo()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := &waE2E.Message{}
				if err := proto.Unmarshal(data, msg); err != nil {
					b.Fatal(err)
				}
				res, err := ToMatrix(ctx, info, msg, r, nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range res.Events {
					if _, err := json.Marshal(e.Content); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkFloorToMatrix(b *testing.B) {
	msgs := benchMessages()
	for _, name := range toMatrixBenchNames {
		data, err := proto.Marshal(msgs[name])
		if err != nil {
			b.Fatal(err)
		}
		res, err := ToMatrix(context.Background(), groupInfo(), msgs[name], newWorld(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := &waE2E.Message{}
				if err := proto.Unmarshal(data, msg); err != nil {
					b.Fatal(err)
				}
				for _, e := range res.Events {
					if _, err := json.Marshal(e.Content); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkToWhatsApp(b *testing.B) {
	ctx := context.Background()
	chat := Chat{JID: groupJID, Self: selfJID}
	for _, name := range toWhatsAppBenchNames {
		data := []byte(benchEvents[name])
		r := newWorld()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				evt, err := DecodeEvent(data)
				if err != nil {
					b.Fatal(err)
				}
				res, err := ToWhatsApp(ctx, evt, chat, r, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := proto.Marshal(res.Message); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFloorToWhatsApp(b *testing.B) {
	chat := Chat{JID: groupJID, Self: selfJID}
	for _, name := range toWhatsAppBenchNames {
		data := []byte(benchEvents[name])
		evt, err := DecodeEvent(data)
		if err != nil {
			b.Fatal(err)
		}
		res, err := ToWhatsApp(context.Background(), evt, chat, newWorld(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var decoded MatrixEvent
				if err := json.Unmarshal(data, &decoded); err != nil {
					b.Fatal(err)
				}
				if _, err := proto.Marshal(res.Message); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The twins of chan_bench.cpp: the same channel workloads on goroutines, with
// the same case names and metric units.
package goferpeers

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const chanBuffer = 128

// Two goroutines bounce an int over two unbuffered channels: one iteration
// is a send and a receive each way.
func BenchmarkChanPingpong(b *testing.B) {
	ping := make(chan int)
	pong := make(chan int)
	var partnerDone sync.WaitGroup
	partnerDone.Add(1)
	go func() {
		defer partnerDone.Done()
		for v := range ping {
			pong <- v
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ping <- i
		<-pong
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(ping)
	partnerDone.Wait()
	reportPerUnit(b, "ns_per_roundtrip", elapsed, float64(b.N))
}

// The benchmark goroutine produces; the consumer ranges over the channel.
// The clock stops once the consumer has drained the buffer.
func BenchmarkChanBuffered1p1c(b *testing.B) {
	c := make(chan int, chanBuffer)
	var drained sync.WaitGroup
	drained.Add(1)
	received := 0
	go func() {
		defer drained.Done()
		for range c {
			received++
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c <- i
	}
	close(c)
	drained.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if received != b.N {
		b.Fatalf("the consumer received %d of %d messages", received, b.N)
	}
	reportPerUnit(b, "ns_per_msg", elapsed, float64(b.N))
}

// b.N ints split among the producers, through one channel of chanBuffer to
// consumers ranging over it; spawning is inside the clock, as in gofer's.
func manyToMany(b *testing.B, producers, consumers int) {
	n := b.N
	c := make(chan int, chanBuffer)
	var sent, drained sync.WaitGroup
	var received atomic.Int64
	b.ResetTimer()
	start := time.Now()
	drained.Add(consumers)
	for k := 0; k < consumers; k++ {
		go func() {
			defer drained.Done()
			var mine int64
			for range c {
				mine++
			}
			received.Add(mine)
		}()
	}
	sent.Add(producers)
	for p := 0; p < producers; p++ {
		share := n / producers
		if p < n%producers {
			share++
		}
		go func(share int) {
			defer sent.Done()
			for i := 0; i < share; i++ {
				c <- i
			}
		}(share)
	}
	sent.Wait()
	close(c)
	drained.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got != int64(n) {
		b.Fatalf("the consumers received %d of %d messages", got, n)
	}
	reportPerUnit(b, "ns_per_msg", elapsed, float64(n))
}

func BenchmarkChanBuffered4p4c(b *testing.B) { manyToMany(b, 4, 4) }

// The channel side of "channel against mutex": the std twin moves the same
// stream through a mutex and condition-variable queue between threads.
func BenchmarkStream4p4c(b *testing.B) { manyToMany(b, 4, 4) }

// The same workloads as gofer's benchmarks, on goroutines. Names and metric
// units match the C++ cases so compare.py can pair them: BenchmarkSpawnJoin is
// spawn_join, its ns_per_fiber is gofer's ns_per_fiber, and so on. GOMAXPROCS
// plays the part of procs; compare.py sets it (and -test.cpu) per case.
package goferpeers

import (
	"bufio"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Two goroutines, each calling runtime.Gosched in a loop; at GOMAXPROCS=1
// every Gosched hands the P to the other one.
func BenchmarkYieldPingpong(b *testing.B) {
	var stopped sync.WaitGroup
	var stop atomic.Bool
	var partner atomic.Uint64
	stopped.Add(1)
	go func() {
		defer stopped.Done()
		for !stop.Load() {
			runtime.Gosched()
			partner.Add(1)
		}
	}()
	runtime.Gosched()

	before := partner.Load()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		runtime.Gosched()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	count := partner.Load() - before
	stop.Store(true)
	stopped.Wait()
	reportPerUnit(b, "ns_per_switch", elapsed, float64(b.N)+float64(count))
}

func BenchmarkSpawnJoin(b *testing.B) {
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	reportPerUnit(b, "ns_per_fiber", time.Since(start), float64(b.N))
}

func BenchmarkSpawnBatch1000(b *testing.B) {
	const batch = 1000
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(batch)
		for j := 0; j < batch; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	reportPerUnit(b, "ns_per_fiber", time.Since(start), float64(b.N)*batch)
}

func BenchmarkSleep1ms(b *testing.B) {
	took := make([]float64, 0, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		took = append(took, float64(time.Since(t0).Nanoseconds()))
	}
	b.StopTimer()
	reportDistributionUs(b, took)
}

// N goroutines blocked on one channel; the same three figures as gofer's
// parked_fibers: spawn_s (until every goroutine has reached the gate),
// KiB_per_fiber (resident memory added while they are all blocked) and exit_s
// (from closing the gate until all have finished).
func BenchmarkParkedFibers(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		n := n
		b.Run("n:"+strconv.Itoa(n), func(b *testing.B) {
			if !roomForParked(b, n) {
				return
			}
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var reached, finished sync.WaitGroup
				gate := make(chan struct{})
				reached.Add(n)
				finished.Add(n)
				rssBefore := procKiB("/proc/self/status", "VmRSS")

				t0 := time.Now()
				for j := 0; j < n; j++ {
					go func() {
						reached.Done()
						<-gate
						finished.Done()
					}()
				}
				reached.Wait()
				spawn := time.Since(t0)
				rssAfter := procKiB("/proc/self/status", "VmRSS")

				t1 := time.Now()
				close(gate)
				finished.Wait()
				exit := time.Since(t1)

				b.ReportMetric(spawn.Seconds(), "spawn_s")
				b.ReportMetric(exit.Seconds(), "exit_s")
				b.ReportMetric(float64(rssAfter-rssBefore)/float64(n), "KiB_per_fiber")
			}
		})
	}
}

// A runtime with nothing to do but one sleeping goroutine: the process's CPU
// time over two seconds of wall time, as a percentage of one CPU.
func BenchmarkIdleCPU(b *testing.B) {
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < b.N; i++ {
		cpu0 := processCPU()
		t0 := time.Now()
		done := make(chan struct{})
		go func() {
			time.Sleep(2 * time.Second)
			close(done)
		}()
		<-done
		wall := time.Since(t0)
		cpu := processCPU() - cpu0
		b.ReportMetric(100*float64(cpu)/float64(wall), "cpu_pct")
	}
}

func reportPerUnit(b *testing.B, name string, elapsed time.Duration, units float64) {
	if units > 0 {
		b.ReportMetric(float64(elapsed.Nanoseconds())/units, name)
	}
}

func reportDistributionUs(b *testing.B, ns []float64) {
	if len(ns) == 0 {
		return
	}
	sort.Float64s(ns)
	sum := 0.0
	for _, x := range ns {
		sum += x
	}
	at := func(q float64) float64 {
		i := int(q*float64(len(ns)-1) + 0.5)
		if i >= len(ns) {
			i = len(ns) - 1
		}
		return ns[i]
	}
	b.ReportMetric(sum/float64(len(ns))/1e3, "mean_us")
	b.ReportMetric(at(0.50)/1e3, "p50_us")
	b.ReportMetric(at(0.99)/1e3, "p99_us")
	b.ReportMetric(float64(len(ns)), "samples")
}

// A field of /proc/self/status or /proc/meminfo in KiB, 0 if absent.
func procKiB(file, field string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, field+":") {
			fields := strings.Fields(line[len(field)+1:])
			if len(fields) > 0 {
				v, _ := strconv.ParseInt(fields[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// Same rule as the C++ side: without swap, overshooting memory invites the
// OOM killer, which may pick another process than this one.
func roomForParked(b *testing.B, n int) bool {
	need := int64(n)*8 + 256*1024
	have := procKiB("/proc/meminfo", "MemAvailable")
	if have >= need {
		return true
	}
	b.Skipf("needs about %d MiB free memory, %d MiB available", need/1024, have/1024)
	return false
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

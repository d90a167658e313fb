//! The Prometheus metrics every worker serves: jobs by stage and outcome, how long they take,
//! how long they waited in their task queue, and where the basic prover's time goes: proving,
//! idle with a job in hand whose inputs are not ready, or idle with no job at all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{Counter, CounterVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// A worker's metrics, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// `via_prover_jobs_total{stage, outcome}`.
    pub jobs: IntCounterVec,
    /// `via_prover_job_seconds{stage}`.
    pub job_seconds: HistogramVec,
    /// `via_prover_queue_lag_seconds{stage}`: from scheduled to started.
    pub queue_lag_seconds: HistogramVec,
    /// Where the worker's basic prover spends its time.
    pub basic_prover: Arc<BasicProverTime>,
    /// `via_prover_device_busy_seconds_total`: how long this process's proving device (the GPU)
    /// has been busy with copies and kernels, for every round it proves; it stays at zero
    /// without one. `1 - rate(...)` is the device's idle share.
    device_busy_seconds: Counter,
    device_busy_counted: Arc<Mutex<Duration>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let jobs = IntCounterVec::new(Opts::new("via_prover_jobs_total", "Jobs finished, by stage and outcome"), &["stage", "outcome"]).expect("valid metric");
        let buckets = vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0];
        let job_seconds = HistogramVec::new(HistogramOpts::new("via_prover_job_seconds", "Job duration, by stage").buckets(buckets.clone()), &["stage"]).expect("valid metric");
        let queue_lag_seconds = HistogramVec::new(HistogramOpts::new("via_prover_queue_lag_seconds", "Time from scheduling to start, by stage").buckets(buckets), &["stage"]).expect("valid metric");
        let proving_seconds = Counter::new("via_prover_basic_proving_seconds_total", "Time the basic prover spent proving").expect("valid metric");
        let idle_seconds = CounterVec::new(Opts::new("via_prover_basic_idle_seconds_total", "Time the basic prover stood idle, by cause: inputs (a job in hand, its witness or witness vector not ready) or no_jobs"), &["cause"]).expect("valid metric");
        let device_busy_seconds = Counter::new("via_prover_device_busy_seconds_total", "Time this process's proving device (GPU) spent on copies and kernels").expect("valid metric");
        let collectors = [
            Box::new(jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(job_seconds.clone()),
            Box::new(queue_lag_seconds.clone()),
            Box::new(proving_seconds.clone()),
            Box::new(idle_seconds.clone()),
            Box::new(device_busy_seconds.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("metric names are unique");
        }
        let basic_prover = Arc::new(BasicProverTime::new(proving_seconds, idle_seconds, Instant::now()));
        Self { registry, jobs, job_seconds, queue_lag_seconds, basic_prover, device_busy_seconds, device_busy_counted: Arc::default() }
    }
}

impl Metrics {
    /// The registry in Prometheus' text format, the time counters brought up to now.
    pub fn render(&self) -> String {
        self.basic_prover.settle(Instant::now());
        if let Some(busy) = via_circuits::proving::chosen().and_then(|prover| prover.device_busy()) {
            let mut counted = self.device_busy_counted.lock().unwrap_or_else(|e| e.into_inner());
            self.device_busy_seconds.inc_by(busy.saturating_sub(*counted).as_secs_f64());
            *counted = busy.max(*counted);
        }
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out).expect("metrics encode");
        out
    }
}

/// Where the worker's basic prover (one proof at a time, on the GPU where there is one) spends
/// its time: `via_prover_basic_proving_seconds_total` while proving, and
/// `via_prover_basic_idle_seconds_total{cause}` while not: `inputs` when a basic job is in hand
/// but its witness is still being read or its witness vector generated (witness vectors are
/// generated beside the running proof, so this should stay near zero; if it grows, the worker
/// needs more CPU or a higher `max_concurrent_jobs`), `no_jobs` when the worker holds none (the
/// pool has more provers than work). The three add up to the worker's lifetime.
pub struct BasicProverTime {
    proving_seconds: Counter,
    idle_seconds: CounterVec,
    state: Mutex<ProverState>,
}

struct ProverState {
    jobs_in_hand: usize,
    proving: bool,
    /// When the time up to now was last counted.
    counted_to: Instant,
}

impl BasicProverTime {
    fn new(proving_seconds: Counter, idle_seconds: CounterVec, now: Instant) -> Self {
        Self { proving_seconds, idle_seconds, state: Mutex::new(ProverState { jobs_in_hand: 0, proving: false, counted_to: now }) }
    }

    /// Marks a basic job in hand until the guard drops.
    pub fn job_in_hand(self: &Arc<Self>) -> JobInHand {
        self.change(Instant::now(), |s| s.jobs_in_hand += 1);
        JobInHand(self.clone())
    }

    /// Runs `prove`, counting its time as proving.
    pub fn proving<T>(&self, prove: impl FnOnce() -> T) -> T {
        self.change(Instant::now(), |s| s.proving = true);
        let result = prove();
        self.change(Instant::now(), |s| s.proving = false);
        result
    }

    /// Counts the time since the last count under the state it passed in.
    pub fn settle(&self, now: Instant) {
        self.change(now, |_| {});
    }

    /// Counts the time up to `now` under the state it passed in, then changes the state.
    fn change(&self, now: Instant, change: impl FnOnce(&mut ProverState)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seconds = now.saturating_duration_since(state.counted_to).as_secs_f64();
        match (state.proving, state.jobs_in_hand) {
            (true, _) => self.proving_seconds.inc_by(seconds),
            (false, 0) => self.idle_seconds.with_label_values(&["no_jobs"]).inc_by(seconds),
            (false, _) => self.idle_seconds.with_label_values(&["inputs"]).inc_by(seconds),
        }
        state.counted_to = state.counted_to.max(now);
        change(&mut state);
    }
}

/// A basic job the worker holds (see [`BasicProverTime::job_in_hand`]).
pub struct JobInHand(Arc<BasicProverTime>);

impl Drop for JobInHand {
    fn drop(&mut self) {
        self.0.change(Instant::now(), |s| s.jobs_in_hand -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(time: &BasicProverTime) -> [f64; 3] {
        [time.proving_seconds.get(), time.idle_seconds.with_label_values(&["inputs"]).get(), time.idle_seconds.with_label_values(&["no_jobs"]).get()]
    }

    #[test]
    fn the_prover_time_splits_into_proving_waiting_on_inputs_and_no_jobs() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let proving = Counter::new("proving", "proving").unwrap();
        let idle = CounterVec::new(Opts::new("idle", "idle"), &["cause"]).unwrap();
        let time = BasicProverTime::new(proving, idle, start);
        // 0-2 s nothing to do; a job arrives and reads its inputs for 3 s; a second job arrives.
        time.settle(at(2));
        time.change(at(2), |s| s.jobs_in_hand += 1);
        time.change(at(5), |s| s.proving = true);
        time.change(at(6), |s| s.jobs_in_hand += 1);
        // The first proof ends at 9 s; the second job's vector is ready at 10 s, proved by 14 s.
        time.change(at(9), |s| s.proving = false);
        time.change(at(9), |s| s.jobs_in_hand -= 1);
        time.change(at(10), |s| s.proving = true);
        time.change(at(14), |s| s.proving = false);
        time.change(at(14), |s| s.jobs_in_hand -= 1);
        time.settle(at(20));
        assert_eq!(seconds(&time), [8.0, 4.0, 8.0]);
        // A reading from before the last one counts nothing.
        time.settle(at(19));
        assert_eq!(seconds(&time), [8.0, 4.0, 8.0]);
    }

    #[test]
    fn a_job_guard_and_a_proof_move_the_counters() {
        let metrics = Metrics::default();
        let time = &metrics.basic_prover;
        let job = time.job_in_hand();
        let answer = time.proving(|| 42);
        drop(job);
        assert_eq!(answer, 42);
        assert_eq!(time.state.lock().unwrap().jobs_in_hand, 0);
        assert!(!time.state.lock().unwrap().proving);
        let rendered = metrics.render();
        for name in ["via_prover_basic_proving_seconds_total", "via_prover_basic_idle_seconds_total{cause=\"no_jobs\"}", "via_prover_basic_idle_seconds_total{cause=\"inputs\"}", "via_prover_device_busy_seconds_total"] {
            assert!(rendered.contains(name), "{name} missing from\n{rendered}");
        }
    }
}

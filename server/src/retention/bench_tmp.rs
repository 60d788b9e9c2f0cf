use super::*;
use jiff::{SignedDuration, Timestamp, tz::TimeZone};

#[test]
#[ignore]
fn bench_10k() {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let snaps: Vec<Candidate> = (0..10_000)
        .map(|i| {
            let t = now - SignedDuration::from_secs((rnd() % (420 * 86400)) as i64);
            let r = rnd();
            Candidate {
                name: format!("{}_{i}", tz.to_datetime(t).strftime("%Y%m%d_%H%M")),
                managed: r % 20 != 0,
                backup_time: Some(t),
                created: t,
                verified_good: r % 50 == 1,
                keep: r % 200 == 2,
                holds: (r % 300 == 3) as u64,
                used: r % 1_000_000,
            }
        })
        .collect();
    for (name, pol, space) in [
        (
            "default 24/30/0",
            RetentionPolicy {
                hourly_hours: 24,
                daily_days: 30,
                weekly_weeks: 0,
                timezone: tz.clone(),
                min_free_percent: 0,
            },
            None,
        ),
        (
            "24/30/8 + floor",
            RetentionPolicy {
                hourly_hours: 24,
                daily_days: 30,
                weekly_weeks: 8,
                timezone: tz.clone(),
                min_free_percent: 20,
            },
            Some(PoolSpace {
                size: 1 << 40,
                free: 1 << 30,
            }),
        ),
    ] {
        let mut times = Vec::new();
        let mut destroyed = 0;
        for _ in 0..21 {
            let start = std::time::Instant::now();
            let p = plan(&snaps, &pol, now, space);
            times.push(start.elapsed());
            destroyed = p.to_destroy().len();
        }
        times.sort();
        println!(
            "{name}: min {:?} median {:?} max {:?} (destroy {destroyed})",
            times[0], times[10], times[20]
        );
    }
}

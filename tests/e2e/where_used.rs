//! Issue "Where each key is used" (groundwork): the emulator answers CloudTrail's LookupEvents as AWS's API reference
//! documents it — moto has none — so that the look-ups keyaudit will make are tested against pages, filters, the
//! 90-day window, per-account-and-Region histories and the 2-per-second quota, not against a stub.

use serde_json::{Value, json};

use super::harness::{Emulator, python_json};

const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const OTHER: &str = "AKIAI44QH8DHBEXAMPLE";

/// Runs `body` with `ct`, a boto3 CloudTrail client of the management account in `region` that makes one attempt
/// per call (no SDK retries: throttling must be seen); prints JSON.
fn boto(emu: &Emulator, region: &str, body: &str) -> Value {
    let script = format!(
        "import boto3, json, os, time\nfrom botocore.config import Config\n\
         ct = boto3.client('cloudtrail', endpoint_url=os.environ['EP'], region_name='{region}', \
         aws_access_key_id='AKIAEXAMPLEEXAMPLE01', aws_secret_access_key='x', \
         config=Config(retries={{'total_max_attempts': 1}}))\n\
         def code(call):\n    try:\n        call()\n        return 'ok'\n    except Exception as e:\n        \
         return e.response['Error']['Code']\n{body}\n"
    );
    python_json(&script, &[("EP", &emu.url)])
}

#[test]
fn lookup_events_pages_newest_first_by_access_key_within_90_days_per_region_and_at_two_per_second() {
    let emu = Emulator::start();
    let events = |key: &str, n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                json!({"access_key_id": key, "event_source": "s3.amazonaws.com", "event_name": "ListBuckets",
                       "minutes_ago": i, "source_ip": "198.51.100.7", "user_agent": "Boto3/1.34 md/Botocore"})
            })
            .collect()
    };
    let mut us = events(KEY, 120);
    us.extend(events(OTHER, 5));
    us.push(json!({"access_key_id": KEY, "event_source": "iam.amazonaws.com", "days_ago": 100}));
    emu.control("POST", "cloudtrail", &json!({"account_id": ACCOUNT, "region": "us-east-1", "events": us}));
    emu.control("POST", "cloudtrail", &json!({"account_id": ACCOUNT, "region": "eu-west-1", "events": events(KEY, 3)}));

    // Pages of 50, newest first, only the key's events, none older than 90 days; paced under the quota.
    let pages = boto(
        &emu,
        "us-east-1",
        &format!(
            "pages, token = [], None\nwhile True:\n    time.sleep(0.6)\n    \
             args = dict(LookupAttributes=[{{'AttributeKey': 'AccessKeyId', 'AttributeValue': '{KEY}'}}])\n    \
             if token: args['NextToken'] = token\n    r = ct.lookup_events(**args)\n    \
             pages.append([[e['EventTime'].timestamp(), json.loads(e['CloudTrailEvent'])] for e in r['Events']])\n    \
             token = r.get('NextToken')\n    if not token: break\nprint(json.dumps(pages))"
        ),
    );
    let sizes: Vec<usize> = pages.as_array().unwrap().iter().map(|p| p.as_array().unwrap().len()).collect();
    assert_eq!(sizes, [50, 50, 20]);
    let all: Vec<&Value> = pages.as_array().unwrap().iter().flat_map(|p| p.as_array().unwrap()).collect();
    let times: Vec<f64> = all.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let record = &all[0][1];
    assert_eq!(
        (&record["userIdentity"]["accessKeyId"], &record["sourceIPAddress"], &record["userAgent"]),
        (&json!(KEY), &json!("198.51.100.7"), &json!("Boto3/1.34 md/Botocore"))
    );
    assert_eq!((&record["eventSource"], &record["awsRegion"]), (&json!("s3.amazonaws.com"), &json!("us-east-1")));

    // Each Region has its own history; a time range narrows it.
    let eu = boto(
        &emu,
        "eu-west-1",
        &format!(
            "time.sleep(1)\nr = ct.lookup_events(LookupAttributes=[{{'AttributeKey': 'AccessKeyId', \
             'AttributeValue': '{KEY}'}}])\nprint(json.dumps(len(r['Events'])))"
        ),
    );
    assert_eq!(eu, json!(3));
    let ranged = boto(
        &emu,
        "us-east-1",
        "time.sleep(1)\nnow = time.time()\nr = ct.lookup_events(StartTime=now - 600, EndTime=now, MaxResults=50)\n\
         print(json.dumps(len(r['Events'])))",
    );
    assert_eq!(ranged, json!(10 + 5), "the last ten minutes of both keys");

    // AWS's refusals, and the quota: a burst of calls past 2 per second is throttled.
    let refused = boto(
        &emu,
        "us-east-1",
        "time.sleep(1)\nnow = time.time()\n\
         two = code(lambda: ct.lookup_events(LookupAttributes=[{'AttributeKey': 'AccessKeyId', 'AttributeValue': 'a'}, \
         {'AttributeKey': 'EventName', 'AttributeValue': 'b'}]))\ntime.sleep(1)\n\
         backwards = code(lambda: ct.lookup_events(StartTime=now, EndTime=now - 60))\ntime.sleep(1)\n\
         burst = [code(lambda: ct.lookup_events(MaxResults=1)) for _ in range(6)]\n\
         print(json.dumps([two, backwards, burst]))",
    );
    assert_eq!(refused[0], "InvalidLookupAttributesException");
    assert_eq!(refused[1], "InvalidTimeRangeException");
    let burst: Vec<&str> = refused[2].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // A bucket of two, refilled at two per second: the first two pass, the rest of a quick burst mostly not.
    assert_eq!(burst[..2], ["ok", "ok"], "{burst:?}");
    assert!(burst.contains(&"ThrottlingException"), "{burst:?}");
    assert!(burst.iter().all(|c| *c == "ok" || *c == "ThrottlingException"), "{burst:?}");
    let counts = emu.control("GET", "cloudtrail", &Value::Null);
    assert!(counts["throttled"][format!("{ACCOUNT}/us-east-1")].as_u64().unwrap() >= 1, "{counts}");
}

/// The scanner's look-up (`keyaudit_scanner::where_used`) through the AWS SDK against that model: every page read
/// and summarized, the page limit said as a cut, and no request throttled by its own pacing.
#[test]
fn the_scanners_look_up_reads_every_page_paced_under_the_quota() {
    use keyaudit_core::ids::AccessKeyId;
    use keyaudit_scanner::where_used::{SdkTrail, look_up};

    let emu = Emulator::start();
    let events: Vec<Value> = (0..120)
        .map(|i| {
            json!({"access_key_id": KEY, "event_source": "sts.amazonaws.com", "minutes_ago": i,
                   "source_ip": "198.51.100.7", "user_agent": "aws-sdk-rust/1.3 os/linux"})
        })
        .collect();
    emu.control("POST", "cloudtrail", &json!({"account_id": ACCOUNT, "region": "us-east-1", "events": events}));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (whole, cut) = runtime.block_on(async {
        let credentials = aws_credential_types::Credentials::new("AKIAEXAMPLEEXAMPLE01", "x", None, None, "test");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&emu.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        let trail = SdkTrail::new(&config);
        let key = AccessKeyId::parse(KEY).unwrap();
        let now = jiff::Timestamp::from_second(std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64)
            .unwrap();
        let start = now - jiff::SignedDuration::from_hours(24 * 90);
        let end = now + jiff::SignedDuration::from_mins(1);
        let whole = look_up(&trail, &key, start, end, 5).await.unwrap();
        let cut = look_up(&trail, &key, start, end, 2).await.unwrap();
        (whole, cut)
    });
    assert_eq!(whole.used.sources.len(), 1);
    let source = &whole.used.sources[0];
    assert_eq!((source.calls, whole.cut, whole.unreadable), (120, false, 0));
    assert_eq!((source.user_agent.as_str(), source.source_ip.as_str()), ("aws-sdk-rust/1.3 os/linux", "198.51.100.7"));
    assert_eq!(source.services.iter().collect::<Vec<_>>(), ["sts.amazonaws.com"]);
    assert_eq!((cut.used.sources[0].calls, cut.cut), (100, true));
    let counts = emu.control("GET", "cloudtrail", &Value::Null);
    assert_eq!(counts["served"][format!("{ACCOUNT}/us-east-1")], 5, "{counts}");
    assert!(counts["throttled"].as_object().unwrap().is_empty(), "paced under the quota: {counts}");
}

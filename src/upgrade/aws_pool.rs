//! [`NodePool`] over AWS Auto Scaling (`--cloud aws`), with the official SDK. Pools are the
//! groups tagged `kubernetes.io/cluster/<cluster>`, named by a pool tag
//! ([`aws_layout::DEFAULT_POOL_TAGS`] or `--aws-pool-tag`), one group per zone. Ready needs
//! the group's `InService` and `healthy` in every ELBv2 target group of the group (the
//! engine adds Node Ready). Credentials come from the standard chain (environment, shared
//! profile, web identity, instance metadata) and are never logged.
//!
//! What a careful operator does is done here: the roll suspends AZRebalance, alarm
//! notifications and scheduled actions, raises a group's MaxSize when the surge needs it,
//! and records both on the group (tag [`aws_layout::HELD_TAG`]) before changing them, so
//! the end of the run or `abort` restores exactly that.

use super::api_count::ApiCallCounter;
use super::aws_layout::{self as layout, AsgView, Held, LaunchTemplateRef, PoolLayout};
use super::pool::{Instance, InstanceLifecycle, NodePool, PoolError, PoolGroup, SizeAfter};
use async_trait::async_trait;
use aws_sdk_autoscaling::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_autoscaling::operation::update_auto_scaling_group::builders::UpdateAutoScalingGroupFluentBuilder as UpdateGroup;
use aws_sdk_autoscaling::types as asg;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Where and how to reach AWS, and which groups are the cluster's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsSettings {
    /// The cluster name in the `kubernetes.io/cluster/<name>` tag of its groups.
    pub(crate) cluster: String,
    /// Region (else the standard chain: `AWS_REGION`, the profile).
    pub(crate) region: Option<String>,
    /// Endpoint override (a VPC endpoint, or a test server).
    pub(crate) endpoint_url: Option<String>,
    /// The tag naming a group's pool; empty: [`layout::DEFAULT_POOL_TAGS`].
    pub(crate) pool_tag: Option<String>,
    /// The launch template version the groups go to (`$Latest` unless told).
    pub(crate) launch_template_version: String,
}

/// The cluster's Auto Scaling groups.
#[derive(Clone)]
pub(crate) struct AwsNodePool {
    asg: aws_sdk_autoscaling::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    settings: AwsSettings,
    pool_tags: Vec<String>,
    layout: Arc<Mutex<BTreeMap<String, PoolLayout>>>,
    /// (target group, instance) last seen `healthy`, and when: a read that only awaits a
    /// termination need not ask the load balancer about instances it saw healthy a moment ago.
    healthy: Arc<Mutex<BTreeMap<(String, String), std::time::Instant>>>,
    calls: ApiCallCounter,
}

/// How long a `healthy` target health answer is trusted.
const HEALTHY_FOR: Duration = Duration::from_secs(30);

/// How often a call that meets another scaling activity is tried.
const BUSY_ATTEMPTS: u32 = 6;

impl AwsNodePool {
    /// Loads the standard credential and region chain and makes the clients.
    pub(crate) async fn connect(settings: AwsSettings) -> Result<Self, PoolError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            // Throttling and transient errors: the SDK's standard mode, with backoff.
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
        if let Some(r) = &settings.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(u) = &settings.endpoint_url {
            loader = loader.endpoint_url(u.clone());
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(PoolError::api(
                "--cloud aws: no region; give --aws-region or set AWS_REGION",
            ));
        }
        let pool_tags = match &settings.pool_tag {
            Some(t) => vec![t.clone()],
            None => layout::DEFAULT_POOL_TAGS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Ok(AwsNodePool {
            asg: aws_sdk_autoscaling::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            settings,
            pool_tags,
            layout: Arc::default(),
            healthy: Arc::default(),
            calls: ApiCallCounter::default(),
        })
    }

    /// Reads groups: all of the cluster's (by tag), or the named ones.
    async fn describe(&self, names: &[String]) -> Result<Vec<AsgView>, PoolError> {
        let mut req = self.asg.describe_auto_scaling_groups().max_records(100);
        if names.is_empty() {
            req = req.filters(
                asg::Filter::builder()
                    .name("tag-key")
                    .values(format!("kubernetes.io/cluster/{}", self.settings.cluster))
                    .build(),
            );
        } else {
            req = req.set_auto_scaling_group_names(Some(names.to_vec()));
        }
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        // One call per page.
        while let Some(page) = pages.next().await {
            self.calls.record("DescribeAutoScalingGroups");
            let page = page.map_err(|e| api_error("DescribeAutoScalingGroups", e))?;
            out.extend(page.auto_scaling_groups().iter().map(view));
        }
        Ok(out)
    }

    /// The pool's layout, reading the groups the first time.
    async fn pool(&self, pool: &str) -> Result<PoolLayout, PoolError> {
        if let Some(p) = self.cached(pool) {
            return Ok(p);
        }
        self.groups().await?;
        self.cached(pool).ok_or_else(|| PoolError::UnknownPool {
            pool: pool.to_string(),
        })
    }

    fn cached(&self, pool: &str) -> Option<PoolLayout> {
        self.layout.lock().get(pool).cloned()
    }

    /// Changes the cached group `group` of `pool` as a write just changed the real one.
    fn update_cached(&self, pool: &str, group: &str, f: impl FnOnce(&mut AsgView)) {
        if let Some(g) = self
            .layout
            .lock()
            .get_mut(pool)
            .and_then(|p| p.get_mut(group))
        {
            f(g);
        }
    }

    /// Re-reads the pool's groups (one call) and refreshes the cache.
    async fn refresh(&self, pool: &str) -> Result<PoolLayout, PoolError> {
        let known = self.pool(pool).await?;
        let names: Vec<String> = known.keys().cloned().collect();
        let fresh = self.describe(&names).await?;
        let p: PoolLayout = fresh.into_iter().map(|g| (g.name.clone(), g)).collect();
        self.layout.lock().insert(pool.to_string(), p.clone());
        Ok(p)
    }

    /// Runs a write, trying again while another scaling activity is in progress.
    async fn write<F, Fut, T, E>(&self, op: &str, what: &str, f: F) -> Result<(), PoolError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, aws_sdk_autoscaling::error::SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut wait = Duration::from_secs(1);
        for attempt in 1.. {
            self.calls.record(op);
            match f().await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < BUSY_ATTEMPTS && layout::is_busy(e.code()) => {
                    tracing::info!(%op, %what, wait_s = wait.as_secs(), "scaling activity in progress; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(api_error(&format!("{op} {what}"), e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// Sets one group's desired size, raising its MaxSize (recorded first) when the surge
    /// needs it.
    async fn set_group_desired(
        &self,
        pool: &str,
        g: &AsgView,
        desired: u32,
    ) -> Result<(), PoolError> {
        let n = i32::try_from(desired).unwrap_or(i32::MAX);
        if desired > g.max {
            // The surge needs room: MaxSize goes up with the desired size. `hold` recorded
            // the max before the run on the group; make sure a record exists first.
            if !g.tags.contains_key(layout::HELD_TAG) {
                let held = Held::before(g);
                self.record(&g.name, Some(&held)).await?;
                // Cached too: a second surge must not record the raised max as the original.
                self.update_cached(pool, &g.name, |g| {
                    g.tags.insert(layout::HELD_TAG.to_string(), held.to_tag());
                });
            }
            self.update_group(&g.name, |u| u.max_size(n).desired_capacity(n))
                .await?;
        } else {
            self.write("SetDesiredCapacity", &g.name, || {
                self.asg
                    .set_desired_capacity()
                    .auto_scaling_group_name(&g.name)
                    .desired_capacity(n)
                    .honor_cooldown(false)
                    .send()
            })
            .await?;
        }
        // The cache follows the write: the next read of the pool is the engine's to ask for.
        self.update_cached(pool, &g.name, |g| {
            g.desired = desired;
            g.max = g.max.max(desired);
        });
        Ok(())
    }

    /// `UpdateAutoScalingGroup` of `group`, with what `set` puts in the request.
    async fn update_group(
        &self,
        group: &str,
        set: impl Fn(UpdateGroup) -> UpdateGroup,
    ) -> Result<(), PoolError> {
        self.write("UpdateAutoScalingGroup", group, || {
            set(self
                .asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(group))
            .send()
        })
        .await
    }

    /// Writes `held` as the group's [`layout::HELD_TAG`], or with `None` deletes the tag.
    async fn record(&self, group: &str, held: Option<&Held>) -> Result<(), PoolError> {
        let tag = asg::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(layout::HELD_TAG)
            .set_value(held.map(Held::to_tag))
            .set_propagate_at_launch(held.map(|_| false))
            .build();
        match held {
            Some(_) => {
                self.write("CreateOrUpdateTags", group, || {
                    self.asg.create_or_update_tags().tags(tag.clone()).send()
                })
                .await
            }
            None => {
                self.write("DeleteTags", group, || {
                    self.asg.delete_tags().tags(tag.clone()).send()
                })
                .await
            }
        }
    }

    /// The health of each instance in each of `target_groups`.
    async fn target_health(
        &self,
        target_groups: &BTreeSet<String>,
    ) -> Result<BTreeMap<(String, String), String>, PoolError> {
        let mut out = BTreeMap::new();
        for tg in target_groups {
            self.calls.record("DescribeTargetHealth");
            let r = self
                .elb
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .map_err(|e| api_error(&format!("DescribeTargetHealth {tg}"), e))?;
            for d in r.target_health_descriptions() {
                let (Some(id), Some(state)) = (
                    d.target().and_then(|t| t.id()),
                    d.target_health().and_then(|h| h.state()),
                ) else {
                    continue;
                };
                out.insert((tg.clone(), id.to_string()), state.as_str().to_string());
            }
        }
        Ok(out)
    }
}

/// An SDK error as a [`PoolError`]: the call, AWS's code and message (never credentials).
fn api_error<E>(call: &str, e: aws_sdk_autoscaling::error::SdkError<E>) -> PoolError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => DisplayErrorContext(&e).to_string(),
    };
    PoolError::api(format!("AWS {call}: {detail}"))
}

fn view(g: &asg::AutoScalingGroup) -> AsgView {
    let launch_template = if g.mixed_instances_policy().is_some() {
        Err("it uses a mixed instances policy".to_string())
    } else if let Some(lc) = g.launch_configuration_name() {
        Err(format!("it uses launch configuration {lc:?}"))
    } else if let Some(t) = g.launch_template() {
        Ok(LaunchTemplateRef {
            id: t.launch_template_id().map(str::to_string),
            name: t.launch_template_name().map(str::to_string),
            version: t.version().unwrap_or("$Default").to_string(),
        })
    } else {
        Err("it has no launch template".to_string())
    };
    AsgView {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        zones: g.availability_zones().to_vec(),
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        max: g.max_size().unwrap_or(0).max(0) as u32,
        launch_template,
        tags: g
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
        target_groups: g.target_group_arns().to_vec(),
        classic_lbs: g.load_balancer_names().to_vec(),
        suspended: g
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_string))
            .collect(),
        instances: g
            .instances()
            .iter()
            .map(|i| Instance {
                id: i.instance_id().unwrap_or_default().to_string(),
                pool: String::new(),
                zone: i.availability_zone().unwrap_or_default().to_string(),
                version: i
                    .launch_template()
                    .and_then(|t| t.version())
                    .unwrap_or_default()
                    .to_string(),
                lifecycle: layout::lifecycle(i.lifecycle_state().map_or("", |s| s.as_str())),
                lb: None,
            })
            .collect(),
    }
}

#[async_trait]
impl NodePool for AwsNodePool {
    /// Calls so far, by AWS operation.
    fn cloud_calls(&self) -> BTreeMap<String, u64> {
        self.calls.counts()
    }

    async fn groups(&self) -> Result<Vec<PoolGroup>, PoolError> {
        let groups = self.describe(&[]).await?;
        let l = layout::layout(&groups, &self.pool_tags)?;
        let out = l.iter().map(|(n, p)| layout::pool_group(n, p)).collect();
        *self.layout.lock() = l;
        Ok(out)
    }

    async fn instances(&self, pool: &str) -> Result<Vec<Instance>, PoolError> {
        let p = self.refresh(pool).await?;
        if let Some(g) = p.values().find(|g| !g.classic_lbs.is_empty()) {
            return Err(PoolError::api(format!(
                "Auto Scaling group {:?} uses classic load balancers ({}): --cloud aws reads \
                 ELBv2 target health only, and would not know when a new node serves",
                g.name,
                g.classic_lbs.join(", ")
            )));
        }
        // Ask the load balancers only when a live instance's health is not known fresh (never
        // without target groups: no instance has an LB state then).
        let now = std::time::Instant::now();
        let known = {
            let healthy = self.healthy.lock();
            p.values().all(|g| {
                g.instances
                    .iter()
                    .filter(|i| i.lifecycle == InstanceLifecycle::InService)
                    .all(|i| {
                        g.target_groups.iter().all(|tg| {
                            healthy
                                .get(&(tg.clone(), i.id.clone()))
                                .is_some_and(|at| now.duration_since(*at) < HEALTHY_FOR)
                        })
                    })
            })
        };
        let health = if known {
            let healthy = self.healthy.lock();
            healthy
                .keys()
                .map(|k| (k.clone(), "healthy".into()))
                .collect()
        } else {
            let tgs = p.values().flat_map(|g| g.target_groups.iter().cloned());
            let h = self.target_health(&tgs.collect()).await?;
            let mut healthy = self.healthy.lock();
            for (k, state) in &h {
                if state == "healthy" {
                    healthy.insert(k.clone(), now);
                } else {
                    healthy.remove(k);
                }
            }
            h
        };
        Ok(p.values()
            .flat_map(|g| {
                let health = &health;
                g.instances.iter().map(move |i| Instance {
                    pool: pool.to_string(),
                    lb: (!g.target_groups.is_empty()).then(|| {
                        layout::lb_state(
                            g.target_groups.iter().map(|tg| {
                                health.get(&(tg.clone(), i.id.clone())).map(String::as_str)
                            }),
                        )
                    }),
                    ..i.clone()
                })
            })
            .collect())
    }

    async fn set_desired(&self, pool: &str, zone: &str, desired: u32) -> Result<(), PoolError> {
        let p = self.pool(pool).await?;
        let g = layout::group_in(&p, zone).ok_or_else(|| PoolError::UnknownZone {
            pool: pool.to_string(),
            zone: zone.to_string(),
        })?;
        if g.zones.len() > 1 {
            return Err(PoolError::api(format!(
                "Auto Scaling group {:?} spans zones {}: its size is set for the pool as a \
                 whole, not for zone {zone:?}",
                g.name,
                g.zones.join(", ")
            )));
        }
        self.set_group_desired(pool, g, desired).await
    }

    async fn set_sizes(&self, pool: &str, sizes: &BTreeMap<String, u32>) -> Result<(), PoolError> {
        let p = self.pool(pool).await?;
        for g in p.values() {
            if g.zones.len() > 1 {
                let total = g.zones.iter().filter_map(|z| sizes.get(z)).sum();
                self.set_group_desired(pool, g, total).await?;
            } else if let Some(n) = g.zones.first().and_then(|z| sizes.get(z)) {
                self.set_group_desired(pool, g, *n).await?;
            }
        }
        Ok(())
    }

    fn replaces_on_terminate(&self) -> bool {
        true
    }

    /// `TerminateInstanceInAutoScalingGroup`; keeping the size, the group launches a
    /// replacement from its current template.
    async fn terminate(&self, instance: &str, size: SizeAfter) -> Result<(), PoolError> {
        let terminated = self.write("TerminateInstanceInAutoScalingGroup", instance, || {
            self.asg
                .terminate_instance_in_auto_scaling_group()
                .instance_id(instance)
                .should_decrement_desired_capacity(size == SizeAfter::Decrement)
                .send()
        });
        if let Err(e) = terminated.await {
            // Gone already (a resumed run terminates again): success. Asked of the groups,
            // not read from the error, whose wording differs between AWS and look-alikes.
            let pools: Vec<String> = self.layout.lock().keys().cloned().collect();
            for p in pools {
                let fresh = self.refresh(&p).await?;
                let live = fresh
                    .values()
                    .flat_map(|g| &g.instances)
                    .any(|i| i.id == instance && i.lifecycle != InstanceLifecycle::Terminated);
                if live {
                    return Err(e);
                }
            }
            tracing::debug!(%instance, "already gone");
        }
        Ok(())
    }

    async fn set_version(&self, pool: &str, version: &str) -> Result<(), PoolError> {
        let p = self.pool(pool).await?;
        let want = layout::versions_to_set(&p, version, &self.settings.launch_template_version)
            .map_err(PoolError::api)?;
        for (zone, v) in want {
            let Some(g) = layout::group_in(&p, &zone) else {
                continue;
            };
            let t = g.launch_template.as_ref().map_err(|why| {
                PoolError::api(format!(
                    "Auto Scaling group {:?} cannot be pointed at launch template version \
                     {v:?}: {why}",
                    g.name
                ))
            })?;
            if t.version == v {
                continue;
            }
            let spec = asg::LaunchTemplateSpecification::builder()
                .set_launch_template_id(t.id.clone())
                .set_launch_template_name(if t.id.is_some() { None } else { t.name.clone() })
                .version(&v)
                .build();
            self.update_group(&g.name, |u| u.launch_template(spec.clone()))
                .await?;
            self.update_cached(pool, &g.name, |g| {
                if let Ok(t) = g.launch_template.as_mut() {
                    t.version = v.clone();
                }
            });
        }
        Ok(())
    }

    async fn hold(&self, pools: &[String]) -> Result<(), PoolError> {
        for pool in pools {
            for g in self.pool(pool).await?.values() {
                // The record goes first: a crash after it and before the suspension leaves a
                // record of processes not suspended yet, which resuming does no harm to.
                let held = match Held::recorded(g) {
                    Some(h) => h,
                    None => {
                        let h = Held::before(g);
                        self.record(&g.name, Some(&h)).await?;
                        h
                    }
                };
                let missing: Vec<String> = held
                    .suspended
                    .iter()
                    .filter(|p| !g.suspended.contains(p))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    tracing::info!(group = %g.name, processes = ?missing, "suspending for the roll");
                    self.write("SuspendProcesses", &g.name, || {
                        self.asg
                            .suspend_processes()
                            .auto_scaling_group_name(&g.name)
                            .set_scaling_processes(Some(missing.clone()))
                            .send()
                    })
                    .await?;
                }
            }
            self.refresh(pool).await?;
        }
        Ok(())
    }

    async fn restore(&self, pools: &[String]) -> Result<(), PoolError> {
        for pool in pools {
            for g in self.refresh(pool).await?.values() {
                let Some(held) = Held::recorded(g) else {
                    continue;
                };
                if g.max != held.max {
                    if g.desired > held.max {
                        // Never below what runs: the surge is still there (abort removes it
                        // first); the max stays recorded for the next restore.
                        tracing::warn!(group = %g.name, desired = g.desired, max_before = held.max,
                            "max size not restored: the group still runs more than it allowed before");
                        continue;
                    }
                    let max = i32::try_from(held.max).unwrap_or(i32::MAX);
                    self.update_group(&g.name, |u| u.max_size(max)).await?;
                }
                if !held.suspended.is_empty() {
                    self.write("ResumeProcesses", &g.name, || {
                        self.asg
                            .resume_processes()
                            .auto_scaling_group_name(&g.name)
                            .set_scaling_processes(Some(held.suspended.clone()))
                            .send()
                    })
                    .await?;
                }
                // The record goes last: a crash before this restores again, which is a no-op.
                self.record(&g.name, None).await?;
                tracing::info!(group = %g.name, max = held.max, resumed = ?held.suspended, "group restored");
            }
            self.refresh(pool).await?;
        }
        Ok(())
    }
}

//! The rig's reader of the groups a simulated cluster mirrors (moto's server in the tests of
//! `--cloud aws`): every instance of the groups tagged with the cluster, mapped to the
//! simulated group `<pool>-<zone>`. Its own reader, not the engine's adapter: the rig must not
//! see the cloud through the code it tests. Shared by the tests and `benches/upgrade_aws.rs`.

use aws_sdk_autoscaling::types::Filter;
use e2e_gate::cluster::sim::{MirrorSource, MirroredInstance};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which AWS groups the simulated nodes mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsMirror {
    /// The endpoint (`http://127.0.0.1:PORT` of a test server).
    pub endpoint_url: String,
    pub region: String,
    /// The cluster name of the groups' `kubernetes.io/cluster/<name>` tag.
    pub cluster: String,
    /// The tag naming a group's pool (a pool of the topology).
    pub pool_tag: String,
    /// Launch template version → the kubelet version it boots (what the rig's templates
    /// carry). `$Latest` is the highest version listed.
    pub versions: BTreeMap<String, String>,
}

impl AwsMirror {
    /// The source a simulated cluster follows ([`e2e_gate::cluster::sim::SimOptions::mirror`]).
    pub fn source(self) -> Arc<dyn MirrorSource> {
        let client = self.client();
        Arc::new(Reader {
            mirror: self,
            client,
        })
    }

    /// A client with the rig's static credentials.
    fn client(&self) -> aws_sdk_autoscaling::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_autoscaling::config::Builder::new()
            .behavior_version(aws_sdk_autoscaling::config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_sdk_autoscaling::config::Region::new(
                self.region.clone(),
            ))
            .endpoint_url(&self.endpoint_url)
            .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
                "rig",
                "rig",
                None,
                None,
                "sim-mirror",
            ))
            .build();
        aws_sdk_autoscaling::Client::from_conf(config)
    }

    /// The kubelet a launch template version boots.
    fn kubelet_for(&self, version: &str) -> Option<&String> {
        match version {
            "$Latest" => self
                .versions
                .iter()
                .max_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0))
                .map(|(_, v)| v),
            "$Default" => self
                .versions
                .iter()
                .min_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX))
                .map(|(_, v)| v),
            v => self.versions.get(v),
        }
    }
}

/// An [`AwsMirror`] with its one client.
struct Reader {
    mirror: AwsMirror,
    client: aws_sdk_autoscaling::Client,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.mirror.endpoint_url)
    }
}

#[async_trait::async_trait]
impl MirrorSource for Reader {
    /// Every live instance of the cluster's groups. An instance's kubelet is read from its
    /// group's launch template version now, which is the one it launched with when it is
    /// first seen (the mirror polls faster than the engine changes versions); the instance's
    /// own reported version is not trusted (moto reports the group's first).
    async fn read(&self) -> Result<Vec<MirroredInstance>, String> {
        let m = &self.mirror;
        let groups = self
            .client
            .describe_auto_scaling_groups()
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values(format!("kubernetes.io/cluster/{}", m.cluster))
                    .build(),
            )
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_sdk_autoscaling::error::DisplayErrorContext(&e).to_string())?;
        let mut out = Vec::new();
        for g in &groups {
            let Some(pool) = g
                .tags()
                .iter()
                .find(|t| t.key() == Some(m.pool_tag.as_str()))
                .and_then(|t| t.value())
            else {
                continue;
            };
            let version = g
                .launch_template()
                .and_then(|t| t.version())
                .unwrap_or("$Default");
            let kubelet = m.kubelet_for(version).cloned().unwrap_or_default();
            for i in g.instances() {
                let state = i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default();
                if state.starts_with("Terminat") {
                    continue;
                }
                out.push(MirroredInstance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    group: format!("{pool}-{}", i.availability_zone().unwrap_or_default()),
                    kubelet_version: kubelet.clone(),
                });
            }
        }
        Ok(out)
    }
}

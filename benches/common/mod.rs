//! What the index benches share: seeded, clustered, low-rank unit vectors with filter values
//! of known shares, and percentiles.
#![allow(dead_code)]
use campaign_studio::domain::SearchFilter;
use campaign_studio::services::{VectorMeta, normalize};

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn gauss(&mut self) -> f32 {
        let (a, b) = (self.unit().max(1e-7), self.unit());
        (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
    }
}

/// n vectors: 64 cluster centres in a rank-48 subspace, plus small isotropic noise.
pub fn dataset(n: usize, dim: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<VectorMeta>) {
    let mut r = Rng(seed);
    let rank = 48;
    let basis: Vec<Vec<f32>> = (0..rank)
        .map(|_| (0..dim).map(|_| r.gauss()).collect())
        .collect();
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| (0..rank).map(|_| r.gauss()).collect())
        .collect();
    let mut vecs = Vec::with_capacity(n);
    let mut metas = Vec::with_capacity(n);
    for _ in 0..n {
        let c = &centres[(r.next() % 64) as usize];
        let coef: Vec<f32> = c.iter().map(|x| x + 0.35 * r.gauss()).collect();
        let mut v = vec![0f32; dim];
        for (k, b) in basis.iter().enumerate() {
            for (vi, bi) in v.iter_mut().zip(b) {
                *vi += coef[k] * bi;
            }
        }
        v.iter_mut().for_each(|x| *x += 0.5 * r.gauss());
        normalize(&mut v);
        vecs.push(v);
        let u = r.unit();
        let node = if u < 0.01 {
            "n1"
        } else if u < 0.09 {
            "n8"
        } else {
            "rest"
        };
        metas.push(VectorMeta {
            objective: if r.next().is_multiple_of(2) {
                "half".into()
            } else {
                "other".into()
            },
            node: node.into(),
            kpi: Some(r.unit() as f64),
        });
    }
    (vecs, metas)
}

/// `count` queries near library vectors (a vector plus small seeded noise, normalised): the
/// same for every bench that searches `vecs`.
pub fn queries(vecs: &[Vec<f32>], count: usize) -> Vec<Vec<f32>> {
    let mut r = Rng(7);
    (0..count)
        .map(|_| {
            let base = &vecs[(r.next() % vecs.len() as u64) as usize];
            let mut q: Vec<f32> = base.iter().map(|x| x + 0.02 * r.gauss()).collect();
            normalize(&mut q);
            q
        })
        .collect()
}

pub fn filters() -> Vec<(&'static str, SearchFilter)> {
    vec![
        ("unfiltered", SearchFilter::default()),
        (
            "50%",
            SearchFilter {
                objective: Some("half".into()),
                node: None,
            },
        ),
        (
            "8%",
            SearchFilter {
                objective: None,
                node: Some("n8".into()),
            },
        ),
        (
            "1%",
            SearchFilter {
                objective: None,
                node: Some("n1".into()),
            },
        ),
    ]
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

//! Seeded, reproducible data sets: N documents, 10,000 users, 100 teams, and the
//! visibility profiles of the benchmark issue.

/// Users in every data set.
pub const USERS: u32 = 10_000;
/// Teams in every data set.
pub const TEAMS: u32 = 100;

/// A visibility profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Each document readable by one user.
    P1,
    /// P1, plus 10% readable by `any`, and one of 100 teams per document.
    P2,
    /// P2, and the query filters on an indexed attribute matching 1%.
    P3,
    /// P2, but each user belongs to 50 teams.
    P4,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::P1 => "P1",
            Profile::P2 => "P2",
            Profile::P3 => "P3",
            Profile::P4 => "P4",
        }
    }

    pub fn parse(s: &str) -> Option<Profile> {
        Some(match s {
            "P1" | "p1" => Profile::P1,
            "P2" | "p2" => Profile::P2,
            "P3" | "p3" => Profile::P3,
            "P4" | "p4" => Profile::P4,
            _ => return None,
        })
    }

    /// The profile whose store this one queries: P3 queries P2's. P4 has its own
    /// store (the same documents as P2, but users in 50 teams).
    pub fn data(self) -> Profile {
        match self {
            Profile::P3 => Profile::P2,
            other => other,
        }
    }
}

/// splitmix64: a small seeded generator, so data sets are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// One document of a data set.
pub struct Doc {
    pub id: String,
    pub owner: u32,
    pub any: bool,
    pub team: Option<u32>,
    pub category: u32,
}

impl Doc {
    /// Appwrite role strings that may read it.
    pub fn readers(&self) -> Vec<String> {
        let mut r = vec![format!("user:u{}", self.owner)];
        if self.any {
            r.push("any".into());
        }
        if let Some(t) = self.team {
            r.push(format!("team:t{t}"));
        }
        r
    }
}

/// Document `i` of a data set of `profile` (deterministic).
pub fn doc(profile: Profile, i: u32) -> Doc {
    let mut rng = Rng::new(0x5eed ^ u64::from(i).wrapping_mul(0x1000_0000_01b3));
    let owner = rng.below(USERS);
    let any = rng.below(10) == 0;
    let team = rng.below(TEAMS);
    let category = rng.below(100);
    let p2 = profile != Profile::P1;
    Doc {
        id: format!("d{i:08}"),
        owner,
        any: p2 && any,
        team: p2.then_some(team),
        category,
    }
}

/// The teams user `u` belongs to under `profile`.
pub fn teams_of(profile: Profile, u: u32) -> Vec<u32> {
    match profile {
        Profile::P1 => Vec::new(),
        Profile::P2 | Profile::P3 => vec![u % TEAMS],
        Profile::P4 => (0..50).map(|k| (u + 2 * k) % TEAMS).collect(),
    }
}

/// The users a run queries as: `k` of them, spread over the 10,000.
pub fn sample_users(k: u32) -> Vec<u32> {
    let mut rng = Rng::new(42);
    (0..k).map(|_| rng.below(USERS)).collect()
}

//! QIDO-RS searches and WADO-RS instance look-ups on [`SqlCatalog`]: one statement each,
//! built from the query (portable SQL; wildcard matching is `GLOB` on SQLite and
//! `LIKE … ESCAPE` on PostgreSQL so that both are case-sensitive).

use super::SqlCatalog;
use crate::catalog::{Dialect, Result};
use crate::qido::{InstanceScope, QidoKey, QidoLevel, QidoMatch, QidoQuery, QidoRow, WadoInstance};

const STUDY_COLUMNS: &str = "st.id AS study_id, st.study_instance_uid, st.institution_id, \
     st.study_date, st.study_time, st.accession_number, st.study_description, \
     st.referring_physician_name, st.study_id AS study_id_attr, st.modalities_in_study, \
     st.num_series, st.num_instances AS num_study_instances, {study_attrs}, \
     p.patient_id, p.issuer_of_patient_id, p.patient_name, p.patient_birth_date, \
     p.patient_sex";
const NO_SERIES_COLUMNS: &str = ", CAST(NULL AS TEXT) AS series_instance_uid, \
     CAST(NULL AS TEXT) AS modality, CAST(NULL AS BIGINT) AS series_number, \
     CAST(NULL AS TEXT) AS series_description, CAST(NULL AS TEXT) AS series_date, \
     CAST(NULL AS TEXT) AS series_time, CAST(NULL AS TEXT) AS body_part_examined, \
     CAST(NULL AS BIGINT) AS num_series_instances, CAST(NULL AS TEXT) AS series_attrs";
const SERIES_COLUMNS: &str = ", se.series_instance_uid, se.modality, se.series_number, \
     se.series_description, se.series_date, se.series_time, se.body_part_examined, \
     se.num_instances AS num_series_instances, {series_attrs}";
const NO_INSTANCE_COLUMNS: &str = ", CAST(NULL AS TEXT) AS sop_instance_uid, \
     CAST(NULL AS TEXT) AS sop_class_uid, CAST(NULL AS TEXT) AS transfer_syntax_uid, \
     CAST(NULL AS BIGINT) AS instance_number, CAST(NULL AS BIGINT) AS number_of_frames, \
     CAST(NULL AS TEXT) AS instance_metadata";
const INSTANCE_COLUMNS: &str = ", i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, \
     i.instance_number, i.number_of_frames, i.metadata AS instance_metadata";
/// Only the newest version of each SOP instance.
const NEWEST_VERSION: &str =
    "i.id = (SELECT MAX(v.id) FROM instances v WHERE v.sop_instance_uid = i.sop_instance_uid)";

enum Bind {
    Text(String),
    Int(i64),
}

struct Builder {
    dialect: Dialect,
    sql: String,
    binds: Vec<Bind>,
}

impl Builder {
    fn new(dialect: Dialect, select: String) -> Self {
        Self {
            dialect,
            sql: select,
            binds: Vec::new(),
        }
    }

    fn param(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    fn and(&mut self, cond: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(cond);
    }

    /// `column` matches a DICOM wildcard pattern (`*`, `?`), case-sensitively.
    fn wildcard(&mut self, column: &str, pattern: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let p = self.param(Bind::Text(pattern.replace('[', "[[]")));
                format!("{column} GLOB {p}")
            }
            Dialect::Postgres => {
                let mut like = String::with_capacity(pattern.len() + 4);
                for c in pattern.chars() {
                    match c {
                        '\\' | '%' | '_' => {
                            like.push('\\');
                            like.push(c);
                        }
                        '*' => like.push('%'),
                        '?' => like.push('_'),
                        c => like.push(c),
                    }
                }
                let p = self.param(Bind::Text(like));
                format!("{column} LIKE {p} ESCAPE '\\'")
            }
        }
    }

    fn text_match(&mut self, column: &str, m: &QidoMatch, time_like: bool) -> String {
        match m {
            QidoMatch::Single(v) => {
                let p = self.param(Bind::Text(v.clone()));
                format!("{column} = {p}")
            }
            QidoMatch::Wildcard(v) | QidoMatch::Fuzzy(v) => self.wildcard(column, v),
            QidoMatch::List(vs) => {
                if vs.is_empty() {
                    return "1 = 0".to_owned();
                }
                let marks: Vec<String> = vs
                    .iter()
                    .map(|v| self.param(Bind::Text(v.clone())))
                    .collect();
                format!("{column} IN ({})", marks.join(", "))
            }
            QidoMatch::Range { from, to } => {
                let mut parts = vec![format!("{column} IS NOT NULL")];
                // DA/TM strings compare byte by byte: PostgreSQL's database collation
                // (en_US.UTF-8, zh_CN.UTF-8 …) would put "~" before the digits
                let column = match self.dialect {
                    Dialect::Postgres => format!("{column} COLLATE \"C\""),
                    Dialect::Sqlite => column.to_owned(),
                };
                if let Some(f) = from {
                    let p = self.param(Bind::Text(f.clone()));
                    parts.push(format!("{column} >= {p}"));
                }
                if let Some(t) = to {
                    // "1300" includes 13:00:59.999: pad the upper bound past every digit
                    let t = if time_like {
                        format!("{t}~")
                    } else {
                        t.clone()
                    };
                    let p = self.param(Bind::Text(t));
                    parts.push(format!("{column} <= {p}"));
                }
                format!("({})", parts.join(" AND "))
            }
        }
    }

    fn int_match(&mut self, column: &str, m: &QidoMatch) -> String {
        let ints = |vs: &[String]| -> Vec<i64> {
            vs.iter().filter_map(|v| v.trim().parse().ok()).collect()
        };
        let values = match m {
            QidoMatch::Single(v) => ints(std::slice::from_ref(v)),
            QidoMatch::List(vs) => ints(vs),
            // wildcards and ranges do not apply to IS; nothing matches
            _ => Vec::new(),
        };
        if values.is_empty() {
            return "1 = 0".to_owned();
        }
        let marks: Vec<String> = values
            .into_iter()
            .map(|v| self.param(Bind::Int(v)))
            .collect();
        format!("{column} IN ({})", marks.join(", "))
    }

    /// A PN attribute (`column`) kept with its `{keys}_groups` and `{keys}_fuzzy` columns
    /// (see `dxhub_core::pn`): a single value or wildcard matches the whole name or any
    /// one component group; fuzzy matching is case- and width-insensitive over every group
    /// and component, as a prefix.
    fn person_name_match(&mut self, column: &str, keys: &str, m: &QidoMatch) -> String {
        match m {
            QidoMatch::Fuzzy(q) => {
                let q = dxhub_core::pn::fuzzy_normalize(q);
                self.wildcard(&format!("{keys}_fuzzy"), &format!("*|{q}*"))
            }
            QidoMatch::Single(q) | QidoMatch::Wildcard(q) => {
                let q = q.replace('|', "");
                self.wildcard(&format!("{keys}_groups"), &format!("*|{q}|*"))
            }
            other => self.text_match(column, other, false),
        }
    }

    fn condition(&mut self, key: QidoKey, m: &QidoMatch) -> String {
        use QidoKey::*;
        match key {
            PatientName => self.person_name_match("p.patient_name", "p.patient_name", m),
            ReferringPhysicianName => {
                self.person_name_match("st.referring_physician_name", "st.referring_physician", m)
            }
            ModalitiesInStudy => {
                let inner = self.text_match("m.modality", m, false);
                format!("EXISTS (SELECT 1 FROM series m WHERE m.study_ref = st.id AND {inner})")
            }
            SeriesNumber => self.int_match("se.series_number", m),
            InstanceNumber => self.int_match("i.instance_number", m),
            other => {
                let (column, time_like) = match other {
                    PatientId => ("p.patient_id", false),
                    IssuerOfPatientId => ("p.issuer_of_patient_id", false),
                    PatientBirthDate => ("p.patient_birth_date", false),
                    PatientSex => ("p.patient_sex", false),
                    StudyInstanceUid => ("st.study_instance_uid", false),
                    StudyDate => ("st.study_date", false),
                    StudyTime => ("st.study_time", true),
                    AccessionNumber => ("st.accession_number", false),
                    StudyId => ("st.study_id", false),
                    StudyDescription => ("st.study_description", false),
                    SeriesInstanceUid => ("se.series_instance_uid", false),
                    Modality => ("se.modality", false),
                    SeriesDescription => ("se.series_description", false),
                    SeriesDate => ("se.series_date", false),
                    SeriesTime => ("se.series_time", true),
                    BodyPartExamined => ("se.body_part_examined", false),
                    SopInstanceUid => ("i.sop_instance_uid", false),
                    SopClassUid => ("i.sop_class_uid", false),
                    PatientName
                    | ReferringPhysicianName
                    | ModalitiesInStudy
                    | SeriesNumber
                    | InstanceNumber => {
                        unreachable!("handled above")
                    }
                };
                self.text_match(column, m, time_like)
            }
        }
    }
}

fn level_rank(l: QidoLevel) -> u8 {
    match l {
        QidoLevel::Study => 0,
        QidoLevel::Series => 1,
        QidoLevel::Instance => 2,
    }
}

impl SqlCatalog {
    pub(super) async fn qido_search(&self, q: &QidoQuery) -> Result<Vec<QidoRow>> {
        if q.limit <= 0 || q.institution_ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let select = match q.level {
            QidoLevel::Study => format!(
                "SELECT {STUDY_COLUMNS}{NO_SERIES_COLUMNS}{NO_INSTANCE_COLUMNS} \
                 FROM studies st JOIN patients p ON p.id = st.patient_ref WHERE 1 = 1"
            ),
            QidoLevel::Series => format!(
                "SELECT {STUDY_COLUMNS}{SERIES_COLUMNS}{NO_INSTANCE_COLUMNS} \
                 FROM series se JOIN studies st ON st.id = se.study_ref \
                 JOIN patients p ON p.id = st.patient_ref WHERE 1 = 1"
            ),
            QidoLevel::Instance => format!(
                "SELECT {STUDY_COLUMNS}{SERIES_COLUMNS}{INSTANCE_COLUMNS} \
                 FROM instances i JOIN series se ON se.id = i.series_ref \
                 JOIN studies st ON st.id = se.study_ref \
                 JOIN patients p ON p.id = st.patient_ref WHERE {NEWEST_VERSION}"
            ),
        };
        let (study_attrs, series_attrs) = if q.with_attrs {
            ("st.attrs AS study_attrs", "se.attrs AS series_attrs")
        } else {
            (
                "CAST(NULL AS TEXT) AS study_attrs",
                "CAST(NULL AS TEXT) AS series_attrs",
            )
        };
        let select = select
            .replace("{study_attrs}", study_attrs)
            .replace("{series_attrs}", series_attrs);
        let mut b = Builder::new(self.dialect, select);
        for (key, m) in &q.conditions {
            // a key below the search level cannot be matched here (the HTTP layer reports
            // it as unsupported); ModalitiesInStudy is a study-level key
            if level_rank(key.level()) > level_rank(q.level) {
                continue;
            }
            let cond = b.condition(*key, m);
            b.and(&cond);
        }
        if let Some(ids) = &q.institution_ids {
            let marks: Vec<String> = ids.iter().map(|id| b.param(Bind::Int(*id))).collect();
            b.and(&format!("st.institution_id IN ({})", marks.join(", ")));
        }
        if let Some(user) = q.routed_to {
            b.and(&super::routed_sql("st.id", "st.identity_hash", user));
        }
        let order = match q.level {
            QidoLevel::Study => " ORDER BY st.id",
            QidoLevel::Series => {
                " ORDER BY st.id, se.series_number IS NULL, se.series_number, se.id"
            }
            QidoLevel::Instance => {
                " ORDER BY st.id, se.series_number IS NULL, se.series_number, se.id, \
                 i.instance_number IS NULL, i.instance_number, i.id"
            }
        };
        b.sql.push_str(order);
        let limit = b.param(Bind::Int(q.limit));
        let offset = b.param(Bind::Int(q.offset.max(0)));
        b.sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));

        let mut query = sqlx::query_as::<_, QidoRow>(&b.sql);
        for bind in b.binds {
            query = match bind {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    pub(super) async fn wado_list(
        &self,
        scope: &InstanceScope,
        with_metadata: bool,
    ) -> Result<Vec<WadoInstance>> {
        let metadata = if with_metadata {
            "i.metadata"
        } else {
            "CAST(NULL AS TEXT) AS metadata"
        };
        let mut sql = format!(
            "SELECT i.id, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, \
             i.number_of_frames, i.size_bytes, i.blob_key, se.series_instance_uid, \
             st.study_instance_uid, st.institution_id, {metadata} \
             FROM instances i JOIN series se ON se.id = i.series_ref \
             JOIN studies st ON st.id = se.study_ref \
             WHERE st.study_instance_uid = $1 AND {NEWEST_VERSION}"
        );
        let mut binds = vec![scope.study_instance_uid.clone()];
        if let Some(series) = &scope.series_instance_uid {
            binds.push(series.clone());
            sql.push_str(&format!(" AND se.series_instance_uid = ${}", binds.len()));
        }
        if let Some(sop) = &scope.sop_instance_uid {
            binds.push(sop.clone());
            sql.push_str(&format!(" AND i.sop_instance_uid = ${}", binds.len()));
        }
        sql.push_str(
            " ORDER BY se.series_number IS NULL, se.series_number, se.id, \
             i.instance_number IS NULL, i.instance_number, i.id",
        );
        let mut query = sqlx::query_as::<_, WadoInstance>(&sql);
        for b in binds {
            query = query.bind(b);
        }
        Ok(query.fetch_all(&self.read).await?)
    }
}

//! Places on Earth: validated latitude/longitude, points with great-circle distance,
//! and GeoJSON polygons (`[longitude, latitude]` positions) with containment.

use geo::{Area, Centroid, Contains};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// Mean Earth radius (IUGG), metres. Used by [`GeoPoint::distance_m`].
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Most positions a polygon may have, over all rings (keeps routing cheap).
pub const POLYGON_POSITIONS_MAX: usize = 10_000;

/// Degrees north, finite, within `[-90, 90]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Latitude(f64);

impl Latitude {
    pub fn parse(value: f64) -> Result<Self, ValueError> {
        if value.is_finite() && (-90.0..=90.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValueError::Latitude(value))
        }
    }

    pub const fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Latitude {
    type Error = ValueError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Latitude> for f64 {
    fn from(l: Latitude) -> f64 {
        l.0
    }
}

/// Degrees east, finite, within `[-180, 180]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Longitude(f64);

impl Longitude {
    pub fn parse(value: f64) -> Result<Self, ValueError> {
        if value.is_finite() && (-180.0..=180.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValueError::Longitude(value))
        }
    }

    pub const fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Longitude {
    type Error = ValueError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Longitude> for f64 {
    fn from(l: Longitude) -> f64 {
        l.0
    }
}

/// A valid point, serialised as `{"latitude": .., "longitude": ..}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    latitude: Latitude,
    longitude: Longitude,
}

impl GeoPoint {
    /// Parses raw degrees; the error names which coordinate is out of range.
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, ValueError> {
        Ok(Self {
            latitude: Latitude::parse(latitude)?,
            longitude: Longitude::parse(longitude)?,
        })
    }

    pub const fn new(latitude: Latitude, longitude: Longitude) -> Self {
        Self {
            latitude,
            longitude,
        }
    }

    pub const fn latitude(&self) -> f64 {
        self.latitude.0
    }

    /// The two validated coordinates.
    pub const fn parts(&self) -> (Latitude, Longitude) {
        (self.latitude, self.longitude)
    }

    pub const fn longitude(&self) -> f64 {
        self.longitude.0
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.latitude().to_radians(), other.latitude().to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.longitude() - self.longitude()).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }

    /// As a `geo` point (`x` = longitude, `y` = latitude).
    pub fn to_geo(&self) -> geo::Point<f64> {
        geo::Point::new(self.longitude(), self.latitude())
    }
}

/// GeoJSON polygon coordinates: rings of `[longitude, latitude]` positions, the first
/// ring the exterior, the others holes.
pub type PolygonCoordinates = Vec<Vec<[f64; 2]>>;

/// A valid GeoJSON polygon: at least one ring, every ring closed (first position ==
/// last) with at least four positions, every position in range, at most
/// [`POLYGON_POSITIONS_MAX`] positions. Serialises as its bare coordinates array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PolygonCoordinates", into = "PolygonCoordinates")]
pub struct Polygon(PolygonCoordinates);

impl Polygon {
    pub fn parse(coordinates: PolygonCoordinates) -> Result<Self, ValueError> {
        let bad = |why: &str| ValueError::Polygon(why.to_owned());
        if coordinates.is_empty() {
            return Err(bad("needs at least one ring"));
        }
        let positions: usize = coordinates.iter().map(Vec::len).sum();
        if positions > POLYGON_POSITIONS_MAX {
            return Err(ValueError::Polygon(format!(
                "has {positions} positions, at most {POLYGON_POSITIONS_MAX} allowed"
            )));
        }
        for (i, ring) in coordinates.iter().enumerate() {
            if ring.len() < 4 {
                return Err(ValueError::Polygon(format!(
                    "ring {i} needs at least 4 positions"
                )));
            }
            if ring.first() != ring.last() {
                return Err(ValueError::Polygon(format!(
                    "ring {i} is not closed (first position must equal the last)"
                )));
            }
            for [lon, lat] in ring {
                Longitude::parse(*lon).map_err(|e| ValueError::Polygon(e.to_string()))?;
                Latitude::parse(*lat).map_err(|e| ValueError::Polygon(e.to_string()))?;
            }
        }
        Ok(Self(coordinates))
    }

    /// Refuses a polygon that is not simple: a ring that crosses, touches or runs back
    /// over itself (a bow tie, a figure eight, a spike), two rings that cross or touch,
    /// a hole that lies outside the exterior ring, or a hole inside another hole. Such
    /// an area has no clear inside, and containment answers for it are arbitrary.
    /// Repeated consecutive positions are ignored.
    ///
    /// Not part of [`Polygon::parse`] on purpose: `parse` also decodes areas already in
    /// the log, which must keep decoding; this stricter rule is for new areas (the
    /// station command checks it).
    pub fn check_simple(&self) -> Result<(), ValueError> {
        struct Segment {
            ring: usize,
            index: usize,
            /// Segments in the segment's ring.
            of: usize,
            line: geo::Line<f64>,
            x: (f64, f64),
            y: (f64, f64),
        }
        let mut segments = Vec::new();
        for (ring, positions) in self.0.iter().enumerate() {
            let mut corners: Vec<[f64; 2]> = Vec::with_capacity(positions.len());
            for p in positions {
                if corners.last() != Some(p) {
                    corners.push(*p);
                }
            }
            let of = corners.len().saturating_sub(1);
            if of < 3 {
                return Err(ValueError::Polygon(format!("ring {ring} encloses no area")));
            }
            for (index, pair) in corners.windows(2).enumerate() {
                let ([ax, ay], [bx, by]) = (pair[0], pair[1]);
                segments.push(Segment {
                    ring,
                    index,
                    of,
                    line: geo::Line::new(
                        geo::coord! { x: ax, y: ay },
                        geo::coord! { x: bx, y: by },
                    ),
                    x: (ax.min(bx), ax.max(bx)),
                    y: (ay.min(by), ay.max(by)),
                });
            }
        }
        // Sweep along x: only segments whose x-ranges overlap can meet.
        segments.sort_by(|a, b| a.x.0.total_cmp(&b.x.0));
        for (i, a) in segments.iter().enumerate() {
            for b in segments[i + 1..].iter().take_while(|b| b.x.0 <= a.x.1) {
                if b.y.0 > a.y.1 || a.y.0 > b.y.1 {
                    continue;
                }
                let Some(meeting) = geo::line_intersection::line_intersection(a.line, b.line)
                else {
                    continue;
                };
                let (first, last) = (a.index.min(b.index), a.index.max(b.index));
                let adjacent =
                    a.ring == b.ring && (last - first == 1 || (first == 0 && last == a.of - 1));
                // Neighbours in a ring share one corner, and only that.
                let shared_corner_only = adjacent
                    && matches!(
                        meeting,
                        geo::LineIntersection::SinglePoint { intersection, .. }
                            if [a.line.start, a.line.end].contains(&intersection)
                                && [b.line.start, b.line.end].contains(&intersection)
                    );
                if shared_corner_only {
                    continue;
                }
                return Err(ValueError::Polygon(if a.ring == b.ring {
                    format!("ring {} crosses or touches itself", a.ring)
                } else {
                    format!(
                        "rings {} and {} cross or touch",
                        a.ring.min(b.ring),
                        a.ring.max(b.ring)
                    )
                }));
            }
        }
        // No two rings meet, so one corner of a hole says on which side of another ring
        // the whole hole lies.
        let area = |ring: &Vec<[f64; 2]>| {
            geo::Polygon::new(
                geo::LineString::from(
                    ring.iter()
                        .map(|[x, y]| geo::Coord { x: *x, y: *y })
                        .collect::<Vec<_>>(),
                ),
                Vec::new(),
            )
        };
        let corner = |ring: &Vec<[f64; 2]>| ring.first().map(|[x, y]| geo::Point::new(*x, *y));
        let Some(exterior) = self.0.first().map(area) else {
            return Ok(());
        };
        for (i, hole) in self.0.iter().enumerate().skip(1) {
            let Some(c) = corner(hole) else { continue };
            if !exterior.contains(&c) {
                return Err(ValueError::Polygon(format!(
                    "ring {i} (a hole) lies outside ring 0"
                )));
            }
            for (j, other) in self.0.iter().enumerate().skip(1) {
                if j != i && area(other).contains(&c) {
                    return Err(ValueError::Polygon(format!(
                        "ring {i} (a hole) lies inside ring {j}, another hole"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Parses a GeoJSON geometry object `{"type": "Polygon", "coordinates": [...]}`.
    pub fn parse_geojson(geometry: &serde_json::Value) -> Result<Self, ValueError> {
        let bad = |why: &str| ValueError::Polygon(why.to_owned());
        if geometry.get("type").and_then(|t| t.as_str()) != Some("Polygon") {
            return Err(bad("expected a GeoJSON object with \"type\": \"Polygon\""));
        }
        let coordinates = geometry
            .get("coordinates")
            .cloned()
            .ok_or_else(|| bad("missing \"coordinates\""))?;
        let coordinates: PolygonCoordinates =
            serde_json::from_value(coordinates).map_err(|_| {
                bad("\"coordinates\" must be an array of rings of [longitude, latitude]")
            })?;
        Self::parse(coordinates)
    }

    pub fn coordinates(&self) -> &PolygonCoordinates {
        &self.0
    }

    /// The GeoJSON geometry object for this polygon.
    pub fn to_geojson(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Polygon", "coordinates": self.0 })
    }

    pub fn to_geo(&self) -> geo::Polygon<f64> {
        let ring = |positions: &Vec<[f64; 2]>| {
            geo::LineString::from(
                positions
                    .iter()
                    .map(|[lon, lat]| geo::Coord { x: *lon, y: *lat })
                    .collect::<Vec<_>>(),
            )
        };
        let mut rings = self.0.iter().map(ring);
        let exterior = rings
            .next()
            .unwrap_or_else(|| geo::LineString::new(Vec::new()));
        geo::Polygon::new(exterior, rings.collect())
    }

    /// Whether the point lies inside (not on the boundary, not in a hole).
    pub fn contains(&self, point: &GeoPoint) -> bool {
        self.to_geo().contains(&point.to_geo())
    }

    /// The area centroid, `None` for a degenerate (zero-area) polygon.
    pub fn centroid(&self) -> Option<GeoPoint> {
        let c = self.to_geo().centroid()?;
        GeoPoint::parse(c.y(), c.x()).ok()
    }

    /// Planar area in square degrees: only meaningful to compare polygons that lie
    /// close to each other (which is all routing needs).
    pub fn area_deg2(&self) -> f64 {
        self.to_geo().unsigned_area()
    }
}

impl TryFrom<PolygonCoordinates> for Polygon {
    type Error = ValueError;

    fn try_from(coordinates: PolygonCoordinates) -> Result<Self, Self::Error> {
        Self::parse(coordinates)
    }
}

impl From<Polygon> for PolygonCoordinates {
    fn from(p: Polygon) -> PolygonCoordinates {
        p.0
    }
}

/// The places the location parser knows without configuration: the larger US cities (and the ones that
/// news nights made known), each with its state, and the short names people use for some of them.
enum USPlaces {
    /// "City:ST" entries; a city in more than one state lists its best-known one first.
    static let cities: [(city: String, states: [String])] = """
        New York:NY;Los Angeles:CA;Chicago:IL;Houston:TX;Phoenix:AZ;Philadelphia:PA;San Antonio:TX;San Diego:CA;Dallas:TX;\
        San Jose:CA;Austin:TX;Jacksonville:FL;Fort Worth:TX;Columbus:OH,GA;Charlotte:NC;Indianapolis:IN;San Francisco:CA;\
        Seattle:WA;Denver:CO;Nashville:TN;Oklahoma City:OK;El Paso:TX;Boston:MA;Portland:OR,ME;Las Vegas:NV;Detroit:MI;\
        Memphis:TN;Louisville:KY;Baltimore:MD;Milwaukee:WI;Albuquerque:NM;Tucson:AZ;Fresno:CA;Sacramento:CA;Mesa:AZ;\
        Kansas City:MO,KS;Atlanta:GA;Omaha:NE;Colorado Springs:CO;Raleigh:NC;Long Beach:CA;Virginia Beach:VA;Miami:FL;\
        Oakland:CA;Minneapolis:MN;Tulsa:OK;Bakersfield:CA;Wichita:KS;Arlington:TX,VA;Tampa:FL;New Orleans:LA;Cleveland:OH;\
        Honolulu:HI;Anaheim:CA;Lexington:KY;Stockton:CA;Henderson:NV;St. Paul:MN;Saint Paul:MN;Cincinnati:OH;\
        St. Louis:MO;Saint Louis:MO;Pittsburgh:PA;Greensboro:NC;Lincoln:NE;Anchorage:AK;Plano:TX;Orlando:FL;\
        Irvine:CA;Newark:NJ;Durham:NC;Chula Vista:CA;Toledo:OH;Fort Wayne:IN;St. Petersburg:FL;Laredo:TX;Jersey City:NJ;\
        Chandler:AZ;Madison:WI;Lubbock:TX;Scottsdale:AZ;Reno:NV;Buffalo:NY;Gilbert:AZ;Glendale:AZ,CA;North Las Vegas:NV;\
        Winston-Salem:NC;Chesapeake:VA;Norfolk:VA;Garland:TX;Irving:TX;Hialeah:FL;Boise:ID;Spokane:WA;Baton Rouge:LA;\
        Tacoma:WA;San Bernardino:CA;Modesto:CA;Fontana:CA;Des Moines:IA;Moreno Valley:CA;Santa Clarita:CA;Fayetteville:NC,AR;\
        Birmingham:AL;Oxnard:CA;Rochester:NY,MN;Port St. Lucie:FL;Grand Rapids:MI;Huntsville:AL;Salt Lake City:UT;\
        Tallahassee:FL;Huntington Beach:CA;Grand Prairie:TX;Knoxville:TN;Worcester:MA;Newport News:VA;Brownsville:TX;\
        Providence:RI;Santa Ana:CA;Chattanooga:TN;Fort Lauderdale:FL;Sioux Falls:SD;Richmond:VA,CA;Eugene:OR;Salem:OR,MA;\
        Olympia:WA;Ann Arbor:MI;Berkeley:CA;Savannah:GA;Charleston:SC,WV;Columbia:SC,MO;Jackson:MS;Little Rock:AR;\
        Hartford:CT;Albany:NY;Harrisburg:PA;Trenton:NJ;Annapolis:MD;Dover:DE;Montgomery:AL;Frankfort:KY;Springfield:IL,MO,MA;\
        Des Plaines:IL;Evanston:IL;Brooklyn:NY;Queens:NY;Bronx:NY;Manhattan:NY;Staten Island:NY;Kenosha:WI;Ferguson:MO;\
        Louisville:KY;Charlottesville:VA;Flint:MI;Akron:OH;Dayton:OH;Syracuse:NY;Burlington:VT;Portsmouth:NH,VA;Missoula:MT;\
        Bismarck:ND;Fargo:ND;Cheyenne:WY;Juneau:AK;Asheville:NC;Minneapolis-Saint Paul:MN;Uvalde:TX;Waco:TX;Corpus Christi:TX;\
        Aurora:CO,IL;Atlanta:GA
        """.split(separator: ";").compactMap { entry in
            let parts = entry.split(separator: ":")
            guard parts.count == 2 else { return nil }
            return (String(parts[0]), parts[1].split(separator: ",").map(String.init))
        }

    /// Short names as people write them: all-capital ones count only in capitals.
    static let shortNames: [(name: String, city: String, state: String)] = [
        ("LA", "Los Angeles", "CA"), ("NYC", "New York", "NY"), ("SF", "San Francisco", "CA"), ("Philly", "Philadelphia", "PA"),
        ("ATL", "Atlanta", "GA"), ("NOLA", "New Orleans", "LA"), ("Vegas", "Las Vegas", "NV"), ("KC", "Kansas City", "MO"),
        ("PDX", "Portland", "OR"), ("DTLA", "Los Angeles", "CA"), ("Chi-town", "Chicago", "IL"), ("H-Town", "Houston", "TX"),
        ("Bay Area", "San Francisco", "CA"), ("DC", "Washington", "DC"),
    ]

    /// Cities whose names are everyday words or names too: read only with their state.
    static let ambiguous: Set<String> = ["mobile", "reading", "orange", "normal", "surprise", "independence", "victoria", "jackson",
                                          "lincoln", "madison", "columbia", "aurora", "henderson", "irving", "gilbert", "eugene",
                                          "chandler", "austin", "charlotte", "dover", "salem", "providence", "buffalo", "flint",
                                          "richmond", "arlington", "jacksonville", "phoenix", "savannah", "durham", "montgomery"]

    /// State names that are also people's names: read alone only after "in", "from", … ("Georgia is live" is a person).
    static let personLikeStates: Set<String> = ["georgia", "virginia", "indiana", "montana", "dakota", "carolina"]
}

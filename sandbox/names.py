"""Hand-written Finnish name and word lists for the synthetic world.

`faker` is not a dependency, and these short lists are enough to produce names with
ä/ö/å, hyphenated names, Swedish-speaking Finns and frequent namesakes (the lists are
deliberately small, so a large world has many people with the same name, as Finland does).
"""

FIRST_NAMES_MALE = (
    "Matti", "Mikko", "Juha", "Timo", "Jari", "Antti", "Pekka", "Jukka", "Mika", "Heikki",
    "Kari", "Markku", "Janne", "Ville", "Tuomas", "Sami", "Petri", "Lauri", "Eero", "Väinö",
    "Jyrki", "Ilkka", "Olli", "Teemu", "Joonas", "Aleksi", "Niko", "Eino", "Onni", "Tapio",
    "Esa", "Harri", "Hannu", "Seppo", "Pertti", "Kalle", "Otto", "Elias", "Leevi", "Juho",
    "Juha-Pekka", "Jan-Erik", "Björn", "Mårten", "Håkan", "Sören", "Göran", "Jörn", "Pär",
    "Tenho", "Yrjö", "Äijö", "Pentti", "Risto", "Arto", "Veli-Matti",
)

FIRST_NAMES_FEMALE = (
    "Anna", "Maria", "Liisa", "Anna-Liisa", "Meri-Tuuli", "Tuula", "Päivi", "Sari", "Minna",
    "Johanna", "Katja", "Riikka", "Hanna", "Laura", "Elina", "Sanna", "Heidi", "Jenni", "Satu",
    "Kaisa", "Aino", "Helmi", "Sofia", "Iida", "Siiri", "Kyllikki", "Sinikka", "Mari-Anne",
    "Ella", "Eveliina", "Åsa", "Märta", "Sölvi", "Pirjo", "Ritva", "Tiina", "Merja", "Pälvi",
    "Hilkka", "Elsa", "Lotta", "Emilia", "Venla", "Enni", "Saara", "Anna-Maija", "Marjatta",
    "Kirsi", "Ulla-Maija", "Jaana", "Säde", "Essi",
)

LAST_NAMES = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen", "Heinonen", "Niemi",
    "Heikkilä", "Kinnunen", "Salonen", "Turunen", "Salo", "Laitinen", "Tuominen", "Rantanen",
    "Karjalainen", "Jokinen", "Mattila", "Savolainen", "Lahtinen", "Ahonen", "Pöllänen",
    "Kärkkäinen", "Hyvärinen", "Räsänen", "Väisänen", "Öhman", "Åberg", "Lindström", "Sjöberg",
    "Ström", "Hakala", "Leppänen", "Kallio", "Peltonen", "Aaltonen", "Manninen", "Hiltunen",
    "Jääskeläinen", "Kemppainen", "Söderholm", "Backström", "Ylönen", "Östman", "Päivärinta",
    "Kivelä", "Seppälä", "Mäkipää", "Räty", "Väänänen", "Björklund",
)

# Second parts for double-barrelled surnames ("Järvi-Hämäläinen", "Kallio-Mäkelä").
SURNAME_PREFIXES = ("Järvi", "Kallio", "Koivu", "Mäki", "Salo", "Vuori", "Niemi", "Ranta")

TITLES = (
    "toimitusjohtaja", "talousjohtaja", "myyntipäällikkö", "hankintapäällikkö", "IT-päällikkö",
    "projektipäällikkö", "kirjanpitäjä", "asiakkuuspäällikkö", "ohjelmistokehittäjä",
    "markkinointikoordinaattori", "henkilöstöpäällikkö", "tuotantopäällikkö", "hallituksen jäsen",
    "CTO", "Head of Sales", "Key Account Manager", "assistentti", "kehitysjohtaja",
)

INDUSTRIES = (
    "Rakennus", "Sähkö", "Kuljetus", "Konepaja", "Metalli", "Puutarha", "Tilitoimisto",
    "Kiinteistöhuolto", "Logistiikka", "Ohjelmistot", "Consulting", "Design", "Kauppa", "LVI",
    "Teknologia", "Energia", "Elintarvike", "Mainos", "Media", "Matkat", "Maalaus", "Lääkärit",
    "Hammaslääkärit", "Kone", "Puu", "Betoni", "Systems", "Solutions", "Palvelut", "Kiinteistöt",
)

WORDS = (
    "Pohjolan", "Suomen", "Lapin", "Karjalan", "Hämeen", "Saimaan", "Revontuli", "Kuusi",
    "Koivu", "Kataja", "Aalto", "Tähti", "Sisu", "Pohjantähti", "Ilmarinen", "Väinämöinen",
    "Sampo", "Otava", "Kaleva", "Ahti", "Tapiola", "Mänty", "Kivi", "Ranta",
)

CITIES = (
    ("Helsinki", "00100"), ("Espoo", "02100"), ("Tampere", "33100"), ("Vantaa", "01300"),
    ("Oulu", "90100"), ("Turku", "20100"), ("Jyväskylä", "40100"), ("Lahti", "15100"),
    ("Kuopio", "70100"), ("Pori", "28100"), ("Joensuu", "80100"), ("Lappeenranta", "53100"),
    ("Hämeenlinna", "13100"), ("Vaasa", "65100"), ("Seinäjoki", "60100"), ("Rovaniemi", "96100"),
    ("Mikkeli", "50100"), ("Kotka", "48100"), ("Salo", "24100"), ("Porvoo", "06100"),
    ("Mäntsälä", "04600"), ("Äänekoski", "44100"), ("Pietarsaari", "68600"), ("Maarianhamina", "22100"),
)

STREETS = (
    "Mannerheimintie", "Hämeenkatu", "Aleksanterinkatu", "Pohjoisesplanadi", "Kauppakatu",
    "Kirkkokatu", "Teollisuustie", "Länsiväylä", "Yliopistonkatu", "Satamakatu", "Koulukatu",
    "Isokatu", "Puistokatu", "Asemakatu", "Rautatienkatu", "Tehtaankatu", "Sähkötie", "Myllytie",
)

FREEMAIL_DOMAINS = ("gmail.com", "outlook.com", "hotmail.fi", "kolumbus.fi", "luukku.com")

NOTE_PHRASES = (
    "Soitettu, sovittiin uusi tapaaminen ensi viikolle.",
    "Lähetetty tarjous sähköpostilla, odotetaan vastausta.",
    "Asiakas pyysi päivitetyn hinnaston.",
    "Keskusteltu sopimuksen jatkosta, päätös tammikuussa.",
    "Demo pidetty, kiinnostusta integraatioon.",
    "Laskutusosoite muuttunut, päivitetty tiedot.",
    "Ei vastannut puhelimeen, yritetään uudelleen.",
    "Toivoo yhteydenottoa vasta syksyllä.",
)

MAIL_SUBJECTS = (
    "Tarjous", "Re: Tapaaminen", "Sopimusluonnos", "Lasku", "Kiitos tapaamisesta",
    "Fwd: Hinnasto", "Kysymys toimituksesta", "Re: Re: Aikataulu",
)

DEAL_PRODUCTS = (
    "Lisenssi", "Käyttöönotto", "Tukipalvelu", "Koulutus", "Integraatio", "Konsultointi",
)

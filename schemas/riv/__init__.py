"""The national contracts (RIV-TA, domain clinicalprocess:healthcond:certificate) in Mina intyg's own models.

`xsd/` expresses the published WSDL/XSD (element names, namespaces, cardinalities) in schemas of our own writing;
`transport` holds the typed model of a certificate in its transport format, `xml` reads and writes it safely,
`soap` the SOAP 1.1 envelope with the RIV-TA `LogicalAddress` header, `mapping` translates between the transport
format and `schemas.certificate`, and `rules` are the published business rules of each certificate type.
"""
